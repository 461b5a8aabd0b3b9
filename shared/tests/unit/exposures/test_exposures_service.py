"""Exposure events and callback requests through the use cases with in-memory twins: the
field rules of an event and of a callback, what is published and pushed, and the callback
limits (moved from the HTTP tier; one HTTP test per error shape and journey stays in
services/details/tests)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from covidtracer.errors import TooManyRequests, Unavailable, ValidationError
from covidtracer.exposures import model, service
from covidtracer.exposures.settings import ExposureEventSettings
from tracerstack.details_fakes import callback_request as match
from tracerstack.details_fakes import exposure_dependencies, exposure_event

NOW = datetime(2021, 10, 5, 12, 0, tzinfo=UTC)
KEY = "current-exposure-events.json"
RULES = exposure_dependencies().rules


def _deps(rules: ExposureEventSettings = RULES) -> Any:
    return exposure_dependencies(rules=rules)


def event(notification_id: str = "a1k4a000000DaLsAAK", **overrides: Any) -> dict[str, Any]:
    return exposure_event(notification_id, now=NOW, **overrides)


def _published(deps: Any) -> list[str]:
    found = deps.feed.read(KEY)
    return [item["notificationId"] for item in model.feed_items(found[0])] if found else []


def _pushed(deps: Any) -> list[str]:
    return [
        json.loads(message["message"]["data"]["payload"])[0]["notificationId"]
        for message in deps.fcm.sent
    ]


# ---------------------------------------------------------------------------- events (§2.5)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"gln": "123"}, "Gln"),
        ({"gln": None}, "Gln"),
        ({"eventId": ""}, "EventId"),
        ({"notificationId": "a/b"}, "NotificationId"),
        ({"start": "yesterday"}, "Start"),
        ({"end": "2000-01-01T00:00:00Z"}, "End"),
        ({"appBannerRequestCallbackEnabled": "false"}, "AppBannerRequestCallbackEnabled"),
        ({"appBannerLinkUrl": "javascript:alert(1)"}, "AppBannerLinkUrl"),
        ({"appBannerTitle": "t" * 101}, "AppBannerTitle"),
        ({"systemNotificationBody": 5}, "SystemNotificationBody"),
        ({"colour": "red"}, "Colour"),
        # Control characters (issue 11, 7).
        ({"appBannerTitle": "Location\u0000"}, "AppBannerTitle"),
        ({"systemNotificationBody": "You were\u0008 there"}, "SystemNotificationBody"),
        ({"appBannerLinkUrl": "https://covid19.govt.nz/\u0000"}, "AppBannerLinkUrl"),
        ({"gln": "1234567890001\n"}, "Gln"),
    ],
)
def test_a_malformed_event_is_a_validation_error_naming_the_field_and_nothing_is_pushed(
    overrides: dict[str, Any], key: str
) -> None:
    deps = _deps()
    with pytest.raises(ValidationError) as caught:
        service.receive_exposure_event(deps, event("bad1", **overrides), NOW)
    assert key in caught.value.errors, caught.value.errors
    assert deps.fcm.sent == []
    assert list(deps.events.scan()) == []


def test_only_events_that_ended_within_14_days_are_published_and_pushed() -> None:
    deps = _deps()
    assert service.receive_exposure_event(deps, event("old1", days_ago=15), NOW)[0] is True
    assert service.receive_exposure_event(deps, event("recent1", days_ago=13.9), NOW)[0] is True
    assert _published(deps) == ["recent1"]
    assert _pushed(deps) == ["recent1"]


def test_the_ncts_key_is_checked_in_constant_time_and_a_missing_one_is_refused() -> None:
    from covidtracer.errors import Unauthorized

    deps = _deps()
    service.require_ncts_key(deps, "ncts-key")
    for presented in (None, "", "wrong"):
        with pytest.raises(Unauthorized):
            service.require_ncts_key(deps, presented)


# ---------------------------------------------------------------------------- callbacks (§2.4)

KNOWN = "match1"


def _known(rules: ExposureEventSettings = RULES) -> Any:
    """Dependencies holding one known event (``match1``), its push already sent."""
    deps = _deps(rules)
    service.receive_exposure_event(deps, event(KNOWN), NOW)
    deps.fcm.sent.clear()
    return deps


def _callback(deps: Any, body: dict[str, Any], source_ip: str = "203.0.113.7") -> int:
    """The status the route answers for this request (204 when forwarded)."""
    try:
        service.request_callback(deps, service.MatchRequest(body, source_ip), NOW)
    except (ValidationError, TooManyRequests, Unavailable) as error:
        return error.status
    return 204


def test_a_callback_for_a_known_event_reaches_ncts_with_the_phone_in_e164() -> None:
    deps = _known()
    assert _callback(deps, match()) == 204
    assert deps.ncts.callbacks == [
        {
            "eventId": "a0l4a0000004xhcAAA",
            "notificationId": KNOWN,
            "firstName": "Aroha",
            "lastName": "Smith",
            "phone": "+64210123456",
            "contactNotes": "Call after 5pm",
        }
    ]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"gln": "9429300000000"}, "Gln"),
        ({"eventId": "a0l4a0000004xhcZZZ"}, "Gln"),
        ({"notificationId": "nosuchnotification"}, "NotificationId"),
    ],
)
def test_a_callback_that_does_not_prove_the_event_is_a_validation_error(
    overrides: dict[str, Any], key: str
) -> None:
    deps = _known()
    with pytest.raises(ValidationError) as caught:
        service.request_callback(
            deps, service.MatchRequest(match(phone="+64 21 000 0001", **overrides), "ip"), NOW
        )
    assert list(caught.value.errors) == [key]
    assert deps.ncts.callbacks == []


def test_a_callback_for_an_event_no_longer_active_is_unknown() -> None:
    deps = _known()
    later = NOW + timedelta(days=15)
    with pytest.raises(ValidationError) as caught:
        service.request_callback(deps, service.MatchRequest(match(), "ip"), later)
    assert list(caught.value.errors) == ["NotificationId"]


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
def test_each_field_rule_of_a_callback_is_a_validation_error_that_echoes_nothing(
    overrides: dict[str, Any], key: str
) -> None:
    deps = _deps()
    with pytest.raises(ValidationError) as caught:
        service.request_callback(deps, service.MatchRequest(match(**overrides), "ip"), NOW)
    assert key in caught.value.errors, caught.value.errors
    problem = json.dumps(caught.value.body())
    assert "a@b.nz" not in problem and "021 012" not in problem


def test_too_many_callbacks_from_one_ip_are_refused() -> None:
    deps = _known(replace(RULES, callback_limit_per_ip=3))
    statuses = [_callback(deps, match(phone=f"+64 21 777 010{i}")) for i in range(4)]
    assert statuses == [204, 204, 204, 429]


def test_junk_callbacks_from_an_address_do_not_refuse_a_genuine_one_from_it() -> None:
    """Issue 19: 100 junk callbacks (an unknown event, a wrong place) from a carrier NAT
    address used up its allowance and refused a person's genuine callback; only callbacks
    forwarded to the contact tracers count."""
    deps = _known(replace(RULES, callback_limit_per_ip=3))
    for junk in range(20):
        assert _callback(deps, match(notificationId=f"nope{junk}")) == 400
        assert _callback(deps, match(gln="9429300000000")) == 400
    assert _callback(deps, match(phone="+64 21 444 0009")) == 204


def test_a_callback_already_requested_for_a_phone_is_answered_without_sending_it_again() -> None:
    """Someone who sends a person's phone for an event five times must not refuse the
    person's own request: the contact tracers already have that phone for that event, so
    the person's request is answered as requested (204) and not sent a sixth time."""
    deps = _known()
    person = "+64 21 444 0005"
    for _ in range(5):
        assert _callback(deps, match(phone=person, firstName="Someone"), "198.51.100.1") == 204
    assert _callback(deps, match(phone=person)) == 204
    assert len(deps.ncts.callbacks) == 5


def test_junk_callbacks_with_someones_phone_do_not_block_their_genuine_one() -> None:
    deps = _known()
    victim = "+64 21 444 0001"
    for junk in range(8):
        assert _callback(deps, match(phone=victim, notificationId=f"nope{junk}")) == 400
        assert _callback(deps, match(phone=victim, gln="9429300000000")) == 400
    assert _callback(deps, match(phone=victim)) == 204


def test_callbacks_answered_503_are_refunded_to_the_person() -> None:
    deps = _known()
    person = "+64 21 444 0002"
    deps.ncts.down = True
    for _ in range(8):
        assert _callback(deps, match(phone=person)) == 503
    deps.ncts.down = False
    assert _callback(deps, match(phone=person)) == 204


def test_a_request_refused_by_one_limit_is_not_counted_against_another() -> None:
    """An address over its limit sending someone's phone must not use up that phone."""
    deps = _known(replace(RULES, callback_limit_per_ip=1))
    person = "+64 21 444 0003"
    assert _callback(deps, match(phone="+64 21 444 0004")) == 204
    for _ in range(8):
        assert _callback(deps, match(phone=person)) == 429
    generous = replace(deps, rules=replace(RULES, callback_limit_per_ip=100))
    assert _callback(generous, match(phone=person)) == 204
