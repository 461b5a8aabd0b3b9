"""The ENF API's analytics events: each is a line of the function's log, written before the
request returns; nothing is left running after the response (Lambda would freeze it)."""

from __future__ import annotations

import json
import threading

import pytest
from chalice.test import Client
from conftest import Phone, request_code

from covidtracer import settings
from covidtracer.analytics import emitter, model
from tracerstack.samples import daily_keys


def _events(out: str) -> list[model.Event]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [e for e in (model.parse_event(line) for line in lines) if e is not None]


def test_a_whole_upload_writes_its_events_to_the_log_and_leaves_no_thread_behind(
    enf_env: dict[str, str], outbox, capsys: pytest.CaptureFixture[str]
) -> None:
    from app import app

    emitter.use(None)
    with Client(app) as client:
        phone = Phone(client)
        assert [e.name for e in _events(capsys.readouterr().out)] == ["enf_device_registered"]
        code = request_code(client, enf_env, outbox)
        verified = phone.verify(code)
        assert verified.status_code == 200, verified.body
        uploaded = phone.upload(verified.json_body["token"], daily_keys(3))
        assert uploaded.status_code == 204, uploaded.body
        metric = phone.request("POST", "/metrics", {"os": "ios", "event": "DAILY_ACTIVE_TRACE"})
        assert metric.status_code == 204
        names = [e.name for e in _events(capsys.readouterr().out)]
    assert names == [
        "upload_code_issued",
        "upload_code_verified",
        "keys_uploaded",
        "enf_metric_received",
    ]
    # (Before issue 22 a sender thread of the emitter's own was still sending them now.)
    assert not [t for t in threading.enumerate() if t.name == "analytics-emitter"]


def test_with_the_events_off_a_request_writes_none(
    enf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANALYTICS_EVENTS", "false")
    settings.reset()
    emitter.use(None)
    from app import app

    with Client(app) as client:
        Phone(client)
    assert _events(capsys.readouterr().out) == []
    assert emitter.current().stats()["dropped:disabled"] == 1
