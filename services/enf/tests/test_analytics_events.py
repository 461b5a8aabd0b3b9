"""The ENF API's analytics events: requests never wait on, or fail with, Firehose."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from chalice.test import Client
from conftest import Phone, request_code

from covidtracer import settings
from covidtracer.analytics import emitter
from covidtracer.analytics.repository import FirehoseTransport
from covidtracer.analytics.settings import analytics_settings
from tracerstack.jobs import JOBS, scheduled_event
from tracerstack.pytest_plugin import UnresponsiveServer
from tracerstack.samples import daily_keys


@pytest.fixture
def hanging_firehose(
    enf_env: dict[str, str],
    unresponsive_server: UnresponsiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[], emitter.Emitter]]:
    """Builds the process's emitter (from the settings as they are then) against a Firehose
    endpoint that accepts connections and never answers: one attempt of 1.5 s per batch
    (long enough to outlast every check made while a batch hangs, short enough to wait out)."""
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "firehose",
        region_name="ap-southeast-2",
        endpoint_url=unresponsive_server.url,
        config=Config(connect_timeout=1, read_timeout=1.5, retries={"total_max_attempts": 1}),
    )
    monkeypatch.setenv("ANALYTICS_MAX_ATTEMPTS", "1")

    def install() -> emitter.Emitter:
        settings.reset()
        built = emitter.Emitter(analytics_settings(), lambda: FirehoseTransport(client))
        emitter.use(built)
        return built

    yield install
    emitter.use(None)


def test_a_whole_upload_succeeds_while_firehose_never_answers(
    enf_env: dict[str, str], outbox, hanging_firehose, unresponsive_server: UnresponsiveServer
) -> None:
    from app import app

    hanging_firehose()
    with Client(app) as client:
        phone = Phone(client)  # registration: its event is now stuck in the sender
        assert unresponsive_server.accepted.wait(5)
        code = request_code(client, enf_env, outbox)
        verified = phone.verify(code)
        assert verified.status_code == 200, verified.body
        uploaded = phone.upload(verified.json_body["token"], daily_keys(3))
        assert uploaded.status_code == 204, uploaded.body
        metric = phone.request("POST", "/metrics", {"os": "ios", "event": "DAILY_ACTIVE_TRACE"})
        assert metric.status_code == 204
    assert not emitter.flush(0.05)  # the events are still waiting on the unanswered call
    assert emitter.flush(30)
    stats = emitter.current().stats()
    # registered, code issued, code verified, keys uploaded, metric: all dropped and counted
    assert stats["emitted"] == 5 and stats["sent"] == 0
    assert stats["dropped:undeliverable"] == 5


def test_a_misconfigured_stream_drops_and_counts_and_the_request_still_succeeds(
    enf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, iam_denials: Any
) -> None:
    monkeypatch.setenv("ANALYTICS_STREAM_NAME", "no-such-stream")
    settings.reset()
    emitter.use(None)
    from app import app

    with Client(app) as client:
        Phone(client)
    assert emitter.flush(10)
    stats = emitter.current().stats()
    assert stats["emitted"] == 1 and stats["dropped:undeliverable"] == 1
    # A stream outside the role is refused by IAM, exists or not (as in AWS).
    assert {d.action for d in iam_denials()} == {"firehose:PutRecordBatch"}


def test_a_job_waits_for_its_events_no_longer_than_the_flush_timeout(
    enf_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    hanging_firehose,
    unresponsive_server: UnresponsiveServer,
) -> None:
    monkeypatch.setenv("ANALYTICS_FLUSH_TIMEOUT_MS", "300")
    hanging_firehose()
    import app

    context = SimpleNamespace(aws_request_id="r", get_remaining_time_in_millis=lambda: 900_000)
    result = app.export_keys(scheduled_event(JOBS["enf-export"]), context)
    assert result["skipped"] is False
    # It returned after its 0.3 s wait, with its event still in the unanswered call (a wait
    # for Firehose's answer would have ended with the event dropped, nothing pending).
    assert unresponsive_server.accepted.wait(5)
    stats = emitter.current().stats()
    assert (stats["pending"], stats["dropped"]) == (1, 0)
