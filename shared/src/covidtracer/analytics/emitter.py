"""The one emitter of the services' analytics events: buffered, batched to Firehose on a
background thread, and unable to fail or slow down the request that emits.

``emit()`` checks the event against the schema and appends its record to a bounded buffer;
that is all a request pays (microseconds, no I/O, no exception ever escapes). A daemon
thread sends the buffer with ``PutRecordBatch`` (at most 500 records or 4 MiB a call, as
Firehose allows), retries the records Firehose reports as failed, and gives up after
``ANALYTICS_MAX_ATTEMPTS``. When Firehose is down or slow, the buffer fills and further events
are dropped; every drop is counted (``stats()``) and reported as the CloudWatch metric
``CovidTracer/AnalyticsEventsDropped`` through an embedded-metric log line. Nothing is
retried forever and nothing waits on Firehose except ``flush()``, which jobs and triggers
call at the end of an invocation with a bounded timeout.

Lambda freezes an execution environment between invocations: the thread resumes with the
next one, so a request's events go out while it is still running (the sender is woken at
once) or during the next invocation. An environment that is shut down right after a request
can lose the events still buffered; that is the price of keeping them off the request path.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from covidtracer import logs
from covidtracer.analytics.model import EventName, EventRejected, make_event
from covidtracer.analytics.settings import AnalyticsSettings, analytics_settings

log = logs.get_logger(__name__)

MAX_BATCH_RECORDS = 500  # PutRecordBatch's limits
MAX_BATCH_BYTES = 4 * 1024 * 1024
DROPPED_METRIC = "AnalyticsEventsDropped"


class Transport(Protocol):
    def put(self, stream: str, records: Sequence[bytes]) -> list[bool]:
        """Sends one batch; per record, whether it was accepted. Raises if the call failed."""
        ...


class Emitter:
    def __init__(
        self,
        config: AnalyticsSettings | None,
        transport: Callable[[], Transport],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        sleep: Callable[[float], None] = time.sleep,
        backoff_seconds: float = 0.05,
    ) -> None:
        self.config = config
        self._transport_factory = transport
        self._transport: Transport | None = None
        self._clock = clock
        self._new_id = new_id
        self._sleep = sleep
        self._backoff = backoff_seconds
        self._capacity = config.buffer_capacity if config else 0
        self._buffer: deque[bytes] = deque()
        self._condition = threading.Condition()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        # Counters have their own lock: they are updated from requests and the sender alike,
        # and never while waiting for the buffer's condition.
        self._stats_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._unreported_drops: Counter[str] = Counter()

    @property
    def enabled(self) -> bool:
        return self.config is not None and bool(self.config.stream_name)

    # ------------------------------------------------------------------ the request's side

    def emit(
        self,
        name: EventName,
        counts: Mapping[str, int] | None = None,
        categories: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Buffers one event; never raises and never blocks on I/O."""
        try:
            if not self.enabled or self.config is None:
                self._drop("disabled")
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
            record = event.record()
            with self._condition:
                if len(self._buffer) >= self._capacity:
                    self._drop("buffer_full")
                    return
                self._buffer.append(record)
                self._count("emitted")
                self._start_sender()
                self._condition.notify_all()
        except EventRejected as rejected:
            self._drop("rejected")
            log.warning("analytics event rejected", extra={"reason": str(rejected)})
        except Exception as exc:  # an emitter bug must not become a failed request
            self._drop("error")
            log.warning("analytics event not buffered", extra={"error_type": type(exc).__name__})

    def wake(self) -> None:
        """Tell the sender to send what is buffered now (the end of a request)."""
        with self._condition:
            self._condition.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything buffered has been sent or dropped, at most ``timeout``
        seconds (default: the configured flush timeout). True if nothing is left."""
        if timeout is None:
            timeout = (self.config.flush_timeout_ms if self.config else 0) / 1000
        deadline = time.monotonic() + timeout
        with self._condition:
            self._condition.notify_all()
            while self._buffer or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    break
                self._condition.wait(remaining)
            done = not self._buffer and not self._in_flight
        self._report_drops()
        return done

    def stats(self) -> dict[str, int]:
        """Counters since start: emitted, sent, dropped (all reasons) and each reason."""
        with self._condition:
            pending = len(self._buffer) + self._in_flight
        with self._stats_lock:
            counts = dict(self._counts)
        dropped = sum(v for k, v in counts.items() if k.startswith("dropped:"))
        return {"emitted": 0, "sent": 0, **counts, "dropped": dropped, "pending": pending}

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    # ------------------------------------------------------------------ the sender thread

    def _start_sender(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="analytics-emitter", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._buffer and not self._closed:
                    self._condition.wait()
                if self._closed and not self._buffer:
                    return
                batch = self._take_batch()
                self._in_flight = len(batch)
            try:
                self._send(batch)
            except Exception as exc:  # keep the thread alive whatever happens
                self._drop("error", len(batch))
                log.warning("analytics batch failed", extra={"error_type": type(exc).__name__})
            finally:
                with self._condition:
                    self._in_flight = 0
                    self._condition.notify_all()
            self._report_drops()

    def _take_batch(self) -> list[bytes]:
        batch: list[bytes] = []
        size = 0
        while self._buffer and len(batch) < MAX_BATCH_RECORDS:
            if size + len(self._buffer[0]) > MAX_BATCH_BYTES and batch:
                break
            record = self._buffer.popleft()
            size += len(record)
            batch.append(record)
        return batch

    def _send(self, batch: list[bytes]) -> None:
        assert self.config is not None and self.config.stream_name
        pending = batch
        error = ""
        for attempt in range(self.config.max_attempts):
            if attempt:
                self._sleep(self._backoff * 2 ** (attempt - 1))
            try:
                if self._transport is None:
                    self._transport = self._transport_factory()
                accepted = self._transport.put(self.config.stream_name, pending)
            except Exception as exc:  # Firehose down, throttled, misconfigured …
                error = type(exc).__name__
                continue
            failed = [record for record, ok in zip(pending, accepted, strict=True) if not ok]
            self._count("sent", len(pending) - len(failed))
            if not failed:
                return
            pending, error = failed, "FailedPutCount"
        self._drop("undeliverable", len(pending))
        log.warning(
            "analytics records dropped after retries",
            extra={"records": len(pending), "attempts": self.config.max_attempts, "error": error},
        )

    # ------------------------------------------------------------------ counting drops

    def _count(self, name: str, count: int = 1) -> None:
        with self._stats_lock:
            self._counts[name] += count

    def _drop(self, reason: str, count: int = 1) -> None:
        with self._stats_lock:
            self._counts[f"dropped:{reason}"] += count
            if reason != "disabled":
                self._unreported_drops[reason] += count

    def _report_drops(self) -> None:
        """One embedded-metric log line for the drops since the last one (CloudWatch turns
        it into ``CovidTracer/AnalyticsEventsDropped`` by stage, which an alarm watches)."""
        with self._stats_lock:
            drops = dict(self._unreported_drops)
            self._unreported_drops.clear()
        if not drops:
            return
        logs.metric(
            DROPPED_METRIC,
            sum(drops.values()),
            stage=self.config.stage if self.config else "unknown",
            logger=__name__,
            message="analytics events dropped",
            reasons=drops,
        )


# ---------------------------------------------------------------------------- the process's emitter

_lock = threading.Lock()
_current: Emitter | None = None
_pinned = False


def _firehose_transport() -> Transport:
    from covidtracer.analytics.repository import FirehoseTransport

    return FirehoseTransport()


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
            if _current is not None:
                _current.close()
            _current = Emitter(config, _firehose_transport)
            if config is None or not config.stream_name:
                log.info("analytics events are off: ANALYTICS_STREAM_NAME is not set")
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


def wake() -> None:
    try:
        if _current is not None:
            _current.wake()
    except Exception:  # pragma: no cover
        return


def flush(timeout: float | None = None) -> bool:
    """Send what is buffered, waiting at most ``timeout`` s (default: the setting)."""
    try:
        return _current.flush(timeout) if _current is not None else True
    except Exception:  # pragma: no cover
        return False


def use(emitter: Emitter | None) -> None:
    """Pin ``emitter`` as the process's (tests); ``None`` goes back to the settings' one."""
    global _current, _pinned
    with _lock:
        if _current is not None and _current is not emitter:
            _current.close()
        _current, _pinned = emitter, emitter is not None
