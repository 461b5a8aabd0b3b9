"""POST /v2/exposure-event-matches: a callback request for an event the caller can prove."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Api
from test_exposure_events import GLN

from covidtracer import settings
from tracerstack.pytest_plugin import Partners

PATH = "/v2/exposure-event-matches"


def match(phone: str = "+64 21 012 3456", **overrides: Any) -> dict[str, Any]:
    body = {
        "eventId": "a0l4a0000004xhcAAA",
        "notificationId": "match1",
        "gln": GLN,
        "firstName": "Aroha",
        "lastName": "Smith",
        "phone": phone,
        "contactNotes": "Call after 5pm",
    }
    body.update(overrides)
    return body


def test_a_callback_for_a_known_event_reaches_ncts(
    api: Api, known_event: dict[str, Any], outbox: Partners
) -> None:
    status, headers, _ = api.send("POST", PATH, match())
    assert status == 204
    assert headers["Cache-Control"] == "no-store"
    (sent,) = outbox.outbox()
    assert (sent["channel"], sent["to"]) == ("ncts", "callback-requests")
    assert json.loads(sent["body"]) == {
        "eventId": "a0l4a0000004xhcAAA",
        "notificationId": "match1",
        "firstName": "Aroha",
        "lastName": "Smith",
        "phone": "+64210123456",
        "contactNotes": "Call after 5pm",
    }


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"gln": "9429300000000"}, "Gln"),
        ({"eventId": "a0l4a0000004xhcZZZ"}, "Gln"),
        ({"notificationId": "nosuchnotification"}, "NotificationId"),
    ],
)
def test_a_callback_that_does_not_prove_the_event_is_a_400(
    api: Api, known_event: dict[str, Any], outbox: Partners, overrides: dict[str, Any], key: str
) -> None:
    status, _, problem = api.send("POST", PATH, match(phone="+64 21 000 0001", **overrides))
    assert status == 400
    assert problem["type"] == "urn:errors:validation"
    assert list(problem["errors"]) == [key]
    assert outbox.outbox() == []


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"phone": "021 012 3456"}, "Phone"),
        ({"phone": None}, "Phone"),
        ({"gln": "123"}, "Gln"),
        ({"gln": ""}, "Gln"),
        ({"firstName": ""}, "FirstName"),
        ({"firstName": "A" * 51}, "FirstName"),
        ({"lastName": 7}, "LastName"),
        ({"contactNotes": "n" * 256}, "ContactNotes"),
        ({"eventId": None}, "EventId"),
        ({"notificationId": "../x"}, "NotificationId"),
        ({"email": "a@b.nz"}, "Email"),
    ],
)
def test_each_field_rule_is_a_400(
    api: Api, outbox: Partners, overrides: dict[str, Any], key: str
) -> None:
    status, _, problem = api.send("POST", PATH, match(**overrides))
    assert status == 400
    assert key in problem["errors"], problem
    assert "a@b.nz" not in json.dumps(problem) and "021 012" not in json.dumps(problem)


def test_too_many_callbacks_from_one_phone_are_a_429_with_retry_after(
    api: Api, known_event: dict[str, Any], outbox: Partners, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLBACK_LIMIT_PER_PHONE", "2")
    settings.reset()
    phone = "+64 21 555 0101"
    assert [api.send("POST", PATH, match(phone=phone))[0] for _ in range(2)] == [204, 204]
    status, headers, problem = api.send("POST", PATH, match(phone=phone))
    assert status == 429
    assert problem["type"] == "urn:errors:too-many-requests"
    assert 1 <= int(headers["Retry-After"]) <= 86_400
    assert len(outbox.outbox()) == 2
    # Another phone is not held back.
    assert api.send("POST", PATH, match(phone="+64 21 555 0102"))[0] == 204


def test_too_many_callbacks_from_one_ip_are_a_429(
    api: Api, known_event: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unusual window gives this test a bucket of its own.
    monkeypatch.setenv("CALLBACK_IP_WINDOW_SECONDS", "7777")
    monkeypatch.setenv("CALLBACK_LIMIT_PER_IP", "3")
    settings.reset()
    statuses = [api.send("POST", PATH, match(phone=f"+64 21 777 010{i}"))[0] for i in range(4)]
    assert statuses == [204, 204, 204, 429]


def test_ncts_down_is_a_503(api: Api, known_event: dict[str, Any], outbox: Partners) -> None:
    outbox.outage("ncts", 502)
    status, _, problem = api.send("POST", PATH, match(phone="+64 21 999 0001"))
    assert status == 503
    assert problem["type"] == "urn:errors:unavailable"
