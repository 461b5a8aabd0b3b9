"""POST /v2/exposure-event-matches: a callback request for an event the caller can prove."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Api

from covidtracer import settings
from tracerstack.details_fakes import callback_request as match
from tracerstack.pytest_plugin import Partners, from_address

PATH = "/v2/exposure-event-matches"


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


# Proving the event, the field rules and the limits per address are tables in the unit tier
# (shared/tests/unit/exposures); here the error's shape over HTTP.


def test_a_callback_that_breaks_a_rule_is_a_400_that_echoes_nothing(
    api: Api, known_event: dict[str, Any], outbox: Partners
) -> None:
    status, _, problem = api.send("POST", PATH, match(phone="021 012 3456", email="a@b.nz"))
    assert status == 400
    assert problem["type"] == "urn:errors:validation"
    assert {"Phone", "Email"} <= set(problem["errors"]), problem
    assert "a@b.nz" not in json.dumps(problem) and "021 012" not in json.dumps(problem)
    assert outbox.outbox() == []


def test_a_phones_repeats_are_not_sent_again_and_an_address_over_its_allowance_gets_429(
    api: Api, known_event: dict[str, Any], outbox: Partners, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19 changed this test: the third request for one phone and event was a 429 (so
    anyone with the person's number could refuse their request); now it is answered as
    requested and not sent again. What an address may send is what answers 429."""
    monkeypatch.setenv("CALLBACK_LIMIT_PER_PHONE", "2")
    monkeypatch.setenv("CALLBACK_LIMIT_PER_IP", "3")
    settings.reset()
    phone = "+64 21 555 0101"
    # An address of its own: the session's stack counts other tests' callbacks (127.0.0.1).
    with from_address(api.client, "198.51.100.61"):
        assert [api.send("POST", PATH, match(phone=phone))[0] for _ in range(3)] == [204] * 3
        assert len(outbox.outbox()) == 2
        assert api.send("POST", PATH, match(phone="+64 21 555 0102"))[0] == 204
        status, headers, problem = api.send("POST", PATH, match(phone="+64 21 555 0103"))
    assert status == 429
    assert problem["type"] == "urn:errors:too-many-requests"
    assert 1 <= int(headers["Retry-After"]) <= 3600
    assert len(outbox.outbox()) == 3


def test_ncts_down_is_a_503(api: Api, known_event: dict[str, Any], outbox: Partners) -> None:
    outbox.outage("ncts", 502)
    status, _, problem = api.send("POST", PATH, match(phone="+64 21 999 0001"))
    assert status == 503
    assert problem["type"] == "urn:errors:unavailable"
