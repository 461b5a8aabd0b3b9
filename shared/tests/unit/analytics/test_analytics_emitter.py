"""The emitter: one log line per event, written before emit returns; drops are counted and
reported, never a failed request."""

from __future__ import annotations

import json
import threading

import pytest

from covidtracer.analytics import emitter as module
from covidtracer.analytics.emitter import Emitter
from covidtracer.analytics.model import LOG_FILTER_PATTERN, parse_event
from covidtracer.analytics.settings import AnalyticsSettings


def config(**overrides: object) -> AnalyticsSettings:
    values: dict[str, object] = {"stage": "prod", "enabled": True, "release_version": "v1"}
    values.update(overrides)
    return AnalyticsSettings(**values)  # type: ignore[arg-type]


class Log:
    """What the function writes to its log, line by line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)


def test_each_event_is_one_whole_line_of_the_log_holding_exactly_the_record() -> None:
    log = Log()
    sent = Emitter(config(), log)
    sent.emit("keys_uploaded", {"keys": 14}, {"platform": "ios"})
    assert len(log.lines) == 1 and log.lines[0].endswith("\n") and log.lines[0].count("\n") == 1
    record = json.loads(log.lines[0])
    event = parse_event(record)
    assert event is not None and event.name == "keys_uploaded" and event.counts == {"keys": 14}
    assert (event.stage, event.version) == ("prod", "v1")
    # The subscription filter picks the line out by its schema field.
    assert LOG_FILTER_PATTERN == "{ $.schema = 1 }" and record["schema"] == 1
    assert sent.stats() == {"emitted": 1, "dropped": 0}


def test_the_default_emitter_writes_to_standard_output_before_emit_returns(capsys) -> None:
    Emitter(config()).emit("account_created")
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["name"] for line in out] == ["account_created"]


def test_an_event_the_schema_refuses_is_counted_reported_as_a_metric_and_does_not_raise(
    capsys,
) -> None:
    log = Log()
    sent = Emitter(config(), log)
    sent.emit("keys_uploaded", {"phone": 64210123456})  # type: ignore[arg-type]
    sent.emit("no_such_event")  # type: ignore[arg-type]
    assert log.lines == []
    assert sent.stats()["dropped:rejected"] == 2
    metric = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert [m["AnalyticsEventsDropped"] for m in metric] == [1, 1]
    assert metric[-1]["_aws"]["CloudWatchMetrics"][0] == {
        "Namespace": "CovidTracer",
        "Dimensions": [["Stage"]],
        "Metrics": [{"Name": "AnalyticsEventsDropped", "Unit": "Count"}],
    }
    assert metric[-1]["Stage"] == "prod" and "schema" not in metric[-1]


def test_a_log_that_cannot_be_written_is_a_counted_drop_never_a_failed_request() -> None:
    def broken(line: str) -> None:
        raise OSError("stdout closed")

    sent = Emitter(config(), broken)
    sent.emit("account_created")
    assert sent.stats()["dropped:error"] == 1


def test_with_events_off_nothing_is_written_and_the_drop_is_quiet() -> None:
    log = Log()
    sent = Emitter(config(enabled=False), log)
    sent.emit("account_created")
    assert log.lines == [] and sent.stats()["dropped:disabled"] == 1


@pytest.mark.parametrize("threads", [8])
def test_concurrent_emits_never_interleave_their_lines(threads: int, capsys) -> None:
    sent = Emitter(config())

    def burst() -> None:
        for _ in range(250):
            sent.emit("sign_in_succeeded")

    workers = [threading.Thread(target=burst) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    ids = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    assert len(ids) == len(set(ids)) == threads * 250


def test_the_emitter_starts_no_thread(capsys) -> None:
    """Lambda freezes an environment's threads once the response is returned: the event is
    in the log when emit returns, with nothing left to run afterwards."""
    before = threading.active_count()
    module.use(Emitter(config()))
    try:
        for _ in range(10):
            module.emit("account_created")
    finally:
        module.use(None)
    assert threading.active_count() == before
    assert len(capsys.readouterr().out.splitlines()) == 10
