"""The one emitter of the services' analytics events: one line of the function's log each.

``emit()`` checks the event against the schema and writes its record (one line of JSON, the
same bytes the analytics bucket has always held) to standard output, which Lambda sends to
the function's log group in CloudWatch Logs. That is all a request pays: a few microseconds,
no network call, no thread, so nothing waits to be frozen with the execution environment
once the response is returned (Lambda freezes every thread between invocations:
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html). The carrying
is AWS's: a subscription filter on each function's log group (``model.LOG_FILTER_PATTERN``,
declared by the packaged templates) hands the event lines to the service-events Firehose
stream, which writes them to the analytics bucket, as the Embedded Metric Format hands
metric lines to CloudWatch.

Nothing is lost when Firehose is slow or down: the line is already stored in the log group
(for its retention) when the request returns, and CloudWatch Logs retries a throttled or
failing (5xx) delivery to the subscription's destination for up to 24 hours
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/Subscriptions.html). An event
the schema refuses is a bug: it is counted and reported as the CloudWatch metric
``CovidTracer/AnalyticsEventsDropped`` through an embedded-metric log line, never raised.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from covidtracer import logs
from covidtracer.analytics.model import EventName, EventRejected, make_event
from covidtracer.analytics.settings import AnalyticsSettings, analytics_settings

log = logs.get_logger(__name__)

DROPPED_METRIC = "AnalyticsEventsDropped"


class Emitter:
    def __init__(
        self,
        config: AnalyticsSettings | None,
        write: Callable[[str], None] = logs.write_line,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.config = config
        self._write = write
        self._clock = clock
        self._new_id = new_id
        self._stats_lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    @property
    def enabled(self) -> bool:
        return self.config is not None and self.config.enabled

    def emit(
        self,
        name: EventName,
        counts: Mapping[str, int] | None = None,
        categories: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Writes one event to the function's log; never raises."""
        try:
            if not self.enabled or self.config is None:
                self._count("dropped:disabled")
                return
            event = make_event(
                name,
                counts or {},
                categories or {},
                stage=self.config.stage,
                version=self.config.release_version,
                now=now or self._clock(),
                new_id=self._new_id(),
            )
            self._write(event.record().decode())
            self._count("emitted")
        except EventRejected as rejected:
            self._dropped("rejected")
            log.warning("analytics event rejected", extra={"reason": str(rejected)})
        except Exception as exc:  # an emitter bug must not become a failed request
            self._dropped("error")
            log.warning("analytics event not written", extra={"error_type": type(exc).__name__})

    def stats(self) -> dict[str, int]:
        """Counters since start: emitted, dropped (all reasons) and each reason."""
        with self._stats_lock:
            counts = dict(self._counts)
        dropped = sum(v for k, v in counts.items() if k.startswith("dropped:"))
        return {"emitted": 0, **counts, "dropped": dropped}

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self._counts[name] += 1

    def _dropped(self, reason: str) -> None:
        """Counts the drop and reports it at once through an embedded-metric log line, which
        CloudWatch turns into ``CovidTracer/AnalyticsEventsDropped`` by stage (an alarm
        watches it). Drops are bugs, so they are rare: no batching is needed."""
        self._count(f"dropped:{reason}")
        logs.metric(
            DROPPED_METRIC,
            1,
            stage=self.config.stage if self.config else "unknown",
            logger=__name__,
            message="analytics events dropped",
            reasons={reason: 1},
        )


# ---------------------------------------------------------------------------- the process's emitter

_lock = threading.Lock()
_current: Emitter | None = None
_pinned = False


def current() -> Emitter:
    """This process's emitter, built from the analytics settings (rebuilt after
    ``config.reset()``). Settings that cannot be read turn the emitter off."""
    global _current
    if _pinned and _current is not None:
        return _current
    try:
        config: AnalyticsSettings | None = analytics_settings()
    except Exception:
        config = None
    with _lock:
        if _current is None or _current.config is not config:
            _current = Emitter(config)
            if config is None or not config.enabled:
                log.info("analytics events are off (ANALYTICS_EVENTS)")
        return _current


def emit(
    name: EventName,
    *,
    counts: Mapping[str, int] | None = None,
    categories: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> None:
    """Emit one event (see ``model.CATALOGUE`` for the names and their fields). Never raises."""
    try:
        current().emit(name, counts, categories, now)
    except Exception:  # pragma: no cover - current() itself failing
        return


def use(emitter: Emitter | None) -> None:
    """Pin ``emitter`` as the process's (tests); ``None`` goes back to the settings' one."""
    global _current, _pinned
    with _lock:
        _current, _pinned = emitter, emitter is not None
