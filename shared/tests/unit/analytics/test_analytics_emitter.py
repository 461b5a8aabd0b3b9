"""The emitter: batches, bounded retries, and drops that are counted, never a failed request."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence

import pytest

from covidtracer.analytics.emitter import Emitter
from covidtracer.analytics.repository import MemoryTransport
from covidtracer.analytics.settings import AnalyticsSettings


def config(**overrides: object) -> AnalyticsSettings:
    values: dict[str, object] = {
        "stage": "prod",
        "stream_name": "covidtracer-prod-analytics",
        "release_version": "v1",
        "buffer_capacity": 10_000,
        "max_attempts": 3,
        "flush_timeout_ms": 2_000,
    }
    values.update(overrides)
    return AnalyticsSettings(**values)  # type: ignore[arg-type]


def emitter(transport: object, **overrides: object) -> Emitter:
    return Emitter(config(**overrides), lambda: transport, sleep=lambda _s: None)  # type: ignore[arg-type, return-value]


def test_emitted_events_reach_the_stream_in_batches_of_at_most_500() -> None:
    transport = MemoryTransport()
    sent = emitter(transport)
    for _ in range(1_200):
        sent.emit("keys_uploaded", {"keys": 1}, {"platform": "ios"})
    assert sent.flush(5)
    assert len(transport.records) == 1_200
    assert all(json.loads(r)["name"] == "keys_uploaded" for r in transport.records)
    assert transport.calls >= 3  # 1,200 records cannot go in fewer than three calls
    assert sent.stats()["sent"] == 1_200 and sent.stats()["dropped"] == 0


def test_records_firehose_reports_as_failed_are_retried_until_accepted() -> None:
    transport = MemoryTransport()
    transport.failures = [[True, False, False], [False, True]]
    sent = emitter(transport)
    with sent._condition:  # three events in one batch
        for _ in range(3):
            sent.emit("account_created")
    assert sent.flush(5)
    assert transport.calls == 3
    assert len(transport.records) == 3
    assert sent.stats()["sent"] == 3 and sent.stats()["dropped"] == 0


def test_a_batch_still_failing_after_the_last_attempt_is_dropped_and_counted(capsys) -> None:
    transport = MemoryTransport()
    transport.failures = [ConnectionError("down")] * 3
    sent = emitter(transport, max_attempts=3)
    sent.emit("account_created")
    assert sent.flush(5)
    assert transport.calls == 3  # bounded: never retried forever
    stats = sent.stats()
    assert stats["dropped"] == 1 and stats["dropped:undeliverable"] == 1 and stats["sent"] == 0
    metric = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert metric[-1]["AnalyticsEventsDropped"] == 1
    assert metric[-1]["_aws"]["CloudWatchMetrics"][0] == {
        "Namespace": "CovidTracer",
        "Dimensions": [["Stage"]],
        "Metrics": [{"Name": "AnalyticsEventsDropped", "Unit": "Count"}],
    }
    assert metric[-1]["Stage"] == "prod"


class Hanging:
    """A Firehose that never answers until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.returned = threading.Event()
        self.calls = 0

    def put(self, stream: str, records: Sequence[bytes]) -> list[bool]:
        self.calls += 1
        self.release.wait(10)
        self.returned.set()
        raise TimeoutError("read timeout")


def test_while_firehose_hangs_emit_returns_at_once_and_a_full_buffer_drops_and_counts() -> None:
    transport = Hanging()
    sent = emitter(transport, buffer_capacity=100, max_attempts=1)
    for _ in range(5_000):
        sent.emit("enf_metric_received", None, {"metric": "DAILY_ACTIVE_TRACE", "os": "ios"})
    # 5,000 emits while the sender is stuck: no emit waited on it, for it is stuck still (a
    # wall-clock bound here failed on a loaded machine; this holds whatever the load).
    assert not transport.returned.is_set()
    stats = sent.stats()
    assert stats["dropped:buffer_full"] >= 5_000 - 100 - 500
    assert stats["pending"] <= 100 + 500
    flushed_at = time.perf_counter()
    assert sent.flush(0.2) is False  # a bounded wait, and it says so
    assert time.perf_counter() - flushed_at < 1.0
    transport.release.set()
    assert sent.flush(5)
    assert sent.stats()["pending"] == 0
    assert sent.stats()["emitted"] + sent.stats()["dropped:buffer_full"] == 5_000


def test_an_event_the_schema_refuses_is_counted_and_does_not_raise() -> None:
    transport = MemoryTransport()
    sent = emitter(transport)
    sent.emit("keys_uploaded", {"phone": 64210123456})  # type: ignore[arg-type]
    sent.emit("no_such_event")  # type: ignore[arg-type]
    assert sent.flush(1)
    assert transport.records == []
    assert sent.stats()["dropped:rejected"] == 2


def test_without_a_stream_name_events_are_dropped_quietly_and_counted() -> None:
    sent = emitter(MemoryTransport(), stream_name=None)
    sent.emit("account_created")
    assert sent.stats()["dropped:disabled"] == 1
    assert sent.flush(0.1)


def test_a_transport_that_cannot_even_be_built_is_an_undeliverable_drop() -> None:
    def broken() -> MemoryTransport:
        raise RuntimeError("no credentials")

    sent = Emitter(config(), broken, sleep=lambda _s: None)
    sent.emit("account_created")
    assert sent.flush(5)
    assert sent.stats()["dropped:undeliverable"] == 1


@pytest.mark.parametrize("threads", [8])
def test_concurrent_emits_are_each_sent_exactly_once(threads: int) -> None:
    transport = MemoryTransport()
    sent = emitter(transport)

    def burst() -> None:
        for _ in range(250):
            sent.emit("sign_in_succeeded")

    workers = [threading.Thread(target=burst) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sent.flush(5)
    ids = [json.loads(r)["id"] for r in transport.records]
    assert len(ids) == len(set(ids)) == threads * 250
