"""Issue 11 against the app API: hostile input is a documented 4xx, input a dependency
refused is not a 503, and limits count what an attacker controls, not what they can spend
of someone else's allowance. One test (or table) per numbered failure of the issue."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Api
from sign_in_flow import SignedIn
from test_exposure_event_matches import match
from test_exposure_events import event

from covidtracer import settings
from tracerstack.pytest_plugin import Partners

EVENTS = "/ncts/exposure-events"
MATCHES = "/v2/exposure-event-matches"
DIARY = "/v2/user/location-history"
# Every route that reads a JSON body, with the credential it needs (filled in per test).
JSON_ROUTES = [
    ("POST", "/user/auth/initiate", None),
    ("POST", "/user/auth/confirm", None),
    ("PUT", "/user/details", "bearer"),
    ("PATCH", "/user/details", "bearer"),
    ("POST", DIARY, None),
    ("POST", MATCHES, None),
    ("POST", EVENTS, "ncts"),
]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _diary(code: str, **entry: Any) -> dict[str, Any]:
    location = {
        "gln": "9429300000000",
        "locationName": "Blue Stone Cafe",
        "note": "with Sam",
        "entryType": 0,
        "time": _iso(datetime.now(UTC) - timedelta(days=1)),
        **entry,
    }
    return {"consentCode": code, "locations": [location]}


def _consent_code(partners: Partners) -> str:
    request = urllib.request.Request(f"{partners.url}/consent-codes", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["consentCode"])


@pytest.fixture
def credentials(
    sign_in: Callable[[], SignedIn], ncts_key: dict[str, str]
) -> dict[str | None, dict[str, str]]:
    return {None: {}, "bearer": sign_in().headers, "ncts": ncts_key}


# ---------------------------------------------------------------------- 2: 5xx from bad input


@pytest.mark.parametrize(("method", "path", "credential"), JSON_ROUTES)
def test_json_nested_a_thousand_deep_is_a_400_on_every_json_route(
    api: Api, credentials: dict[str | None, dict[str, str]], method: str, path: str,
    credential: str | None,
) -> None:  # fmt: skip
    deep = '{"a": ' + "[" * 1000 + "]" * 1000 + "}"
    status, _, problem = api.send(method, path, deep, credentials[credential])
    assert status == 400, problem
    assert problem["type"] == "urn:errors:validation"
    assert "Body" in problem["errors"]


@pytest.mark.parametrize(("method", "path", "credential"), JSON_ROUTES)
def test_a_lone_surrogate_anywhere_in_a_body_is_a_400(
    api: Api, credentials: dict[str | None, dict[str, str]], method: str, path: str,
    credential: str | None,
) -> None:  # fmt: skip
    status, _, problem = api.send(method, path, '{"x": "\\ud800"}', credentials[credential])
    assert status == 400, problem
    assert problem["type"] == "urn:errors:validation"


def test_a_lone_surrogate_in_an_ncts_event_text_is_a_400_not_a_500(
    api: Api, ncts_key: dict[str, str]
) -> None:
    body = json.dumps(event("surrogate1")).replace("Isolate and call", "Isolate \\udc00 call")
    status, _, problem = api.send("POST", EVENTS, body, ncts_key)
    assert status == 400, problem


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", DIARY), ("DELETE", MATCHES), ("PUT", "/user/auth/initiate"), ("POST", "/health"),
     ("GET", EVENTS), ("PATCH", "/ncts/exposure-events/abc")],
)  # fmt: skip
def test_a_wrong_method_on_a_known_route_is_a_405_in_the_error_shape(
    api: Api, method: str, path: str
) -> None:
    status, headers, problem = api.send(method, path, {})
    assert status == 405, problem
    assert problem["type"] == "urn:errors:method-not-allowed"
    assert headers["Allow"]
    assert headers["Cache-Control"] == "no-store"


def test_query_strings_that_are_not_printable_ascii_are_a_400(api: Api) -> None:
    status, _, problem = api.send("GET", "/health?x=%C2%B2", None)
    assert status == 400, problem
    assert problem["errors"] == {"X": ["The query parameter is not valid."]}


# ---------------------------------------------------------------------- 3: input is not a 503


def test_an_email_cognito_refuses_is_a_400_not_a_503(api: Api, service_env: Any) -> None:
    client_id = json.loads(service_env["APP_CLIENT_IDS"])["ios"]
    status, _, problem = api.send(
        "POST", "/user/auth/initiate", {"clientId": client_id, "email": "o'brien@example.nz"}
    )
    assert status in (200, 400), problem
    if status == 400:
        assert problem["type"] == "urn:errors:validation" and "Email" in problem["errors"]


def test_a_lone_surrogate_in_gender_is_a_400_not_a_503(
    api: Api, sign_in: Callable[[], SignedIn]
) -> None:
    me = sign_in()
    body = '{"firstName": "Aroha", "lastName": "Smith", "phone": "+64 21 012 3456", '
    body += '"gender": "\\ud83d"}'
    status, _, problem = api.send("PUT", "/user/details", body, me.headers)
    assert status == 400, problem


# ---------------------------------------------------------------------- 4: limits lock people out


def test_junk_callbacks_with_someones_phone_do_not_block_their_genuine_one(
    api: Api, known_event: dict[str, Any], outbox: Partners
) -> None:
    victim = "+64 21 444 0001"
    for junk in range(8):
        status, _, _ = api.send("POST", MATCHES, match(phone=victim, notificationId=f"nope{junk}"))
        assert status == 400
        status, _, _ = api.send("POST", MATCHES, match(phone=victim, gln="9429300000000"))
        assert status == 400
    assert api.send("POST", MATCHES, match(phone=victim))[0] == 204


def test_callbacks_answered_503_are_refunded_to_the_person(
    api: Api, known_event: dict[str, Any], outbox: Partners
) -> None:
    person = "+64 21 444 0002"
    outbox.outage("ncts", 503)
    for _ in range(8):
        assert api.send("POST", MATCHES, match(phone=person))[0] == 503
    outbox.clear()
    assert api.send("POST", MATCHES, match(phone=person))[0] == 204


def test_a_request_refused_by_one_limit_is_not_counted_against_another(
    api: Api, known_event: dict[str, Any], outbox: Partners, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An address over its limit sending someone's phone must not use up that phone."""
    monkeypatch.setenv("CALLBACK_IP_WINDOW_SECONDS", "7779")
    monkeypatch.setenv("CALLBACK_LIMIT_PER_IP", "1")
    settings.reset()
    person = "+64 21 444 0003"
    assert api.send("POST", MATCHES, match(phone="+64 21 444 0004"))[0] == 204
    for _ in range(8):
        assert api.send("POST", MATCHES, match(phone=person))[0] == 429
    monkeypatch.setenv("CALLBACK_LIMIT_PER_IP", "100")
    settings.reset()
    assert api.send("POST", MATCHES, match(phone=person))[0] == 204


# ---------------------------------------------------------------------- 5: consent-code guessing


@pytest.fixture
def guess_limit(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> int:
    """A small per-address guess limit with buckets of this test's own (an unusual window)."""
    monkeypatch.setenv("DIARY_GUESSES_PER_IP", "4")
    monkeypatch.setenv("DIARY_GUESS_WINDOW_SECONDS", str(3_000 + len(request.node.name)))
    settings.reset()
    return 4


def test_consent_code_guesses_are_limited_and_refused_ones_never_reach_ncts(
    api: Api, outbox: Partners, guess_limit: int
) -> None:
    statuses = [api.send("POST", DIARY, _diary(f"ZZ{i:04d}"))[0] for i in range(guess_limit + 5)]
    assert statuses == [400] * guess_limit + [429] * 5
    # Refused before forwarding: even a code NCTS issued is not sent on from this address.
    assert api.send("POST", DIARY, _diary(_consent_code(outbox)))[0] == 429
    assert outbox.outbox() == []


def test_a_genuine_diary_is_not_counted_as_a_guess(
    api: Api, outbox: Partners, guess_limit: int
) -> None:
    for _ in range(guess_limit + 2):
        assert api.send("POST", DIARY, _diary(_consent_code(outbox)))[0] == 204


def test_diary_uploads_answered_503_are_not_counted_as_guesses(
    api: Api, outbox: Partners, guess_limit: int
) -> None:
    outbox.outage("ncts", 503)
    for i in range(guess_limit + 2):
        assert api.send("POST", DIARY, _diary(f"YY{i:04d}"))[0] == 503
    outbox.clear()
    assert api.send("POST", DIARY, _diary(_consent_code(outbox)))[0] == 204


# ---------------------------------------------------------------------- 7: control characters


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"gender": "Wahine\u0000"}, "Gender"),
        ({"gender": "x\u001b[31m"}, "Gender"),
        ({"ethnicity": {"selected": ["Māori\u0000"]}}, "Ethnicity.Selected[0]"),
        ({"ethnicity": {"selected": [], "other": "\u0007"}}, "Ethnicity.Other"),
        ({"phone": "+64210123456\n"}, "Phone"),
    ],
)
def test_control_characters_in_contact_details_are_a_400(
    api: Api, sign_in: Callable[[], SignedIn], body: dict[str, Any], key: str
) -> None:
    me = sign_in()
    record = {"firstName": "Aroha", "lastName": "Smith", "phone": "+64 21 012 3456", **body}
    status, _, problem = api.send("PUT", "/user/details", record, me.headers)
    assert status == 400, problem
    assert key in problem["errors"], problem


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"locationName": "Cafe\u0000"}, "Locations[0].LocationName"),
        ({"note": "with\u0000Sam"}, "Locations[0].Note"),
        ({"gln": "9429300000000\n"}, "Locations[0].Gln"),
        ({"gln": "٩٤٢٩٣٠٠٠٠٠٠٠٠"}, "Locations[0].Gln"),
    ],
)
def test_control_characters_and_lookalike_digits_in_a_diary_are_a_400(
    api: Api, entry: dict[str, Any], key: str
) -> None:
    status, _, problem = api.send("POST", DIARY, _diary("A1B2C3", **entry))
    assert status == 400, problem
    assert key in problem["errors"], problem


def test_a_multi_line_diary_note_is_still_accepted(api: Api, outbox: Partners) -> None:
    code = _consent_code(outbox)
    assert api.send("POST", DIARY, _diary(code, note="with Sam\nand Ana\tinside"))[0] == 204


@pytest.mark.parametrize(
    "overrides",
    [
        {"appBannerTitle": "Location\u0000"},
        {"systemNotificationBody": "You were\u0008 there"},
        {"appBannerLinkUrl": "https://covid19.govt.nz/\u0000"},
        {"gln": "1234567890001\n"},
    ],
)
def test_control_characters_in_an_ncts_event_are_a_400(
    api: Api, ncts_key: dict[str, str], overrides: dict[str, Any]
) -> None:
    status, _, problem = api.send("POST", EVENTS, event("ctl1", **overrides), ncts_key)
    assert status == 400, problem


# ---------------------------------------------------------------------- 8: one NCTS key check


def test_the_ncts_key_unreadable_is_a_503(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NCTS_API_KEY_SECRET_ID", "covidtracer/nowhere/ncts-api-key")
    settings.reset()
    status, headers, problem = api.send("POST", EVENTS, event("k1"), {"x-api-key": "guess"})
    assert status == 503, problem
    assert problem["type"] == "urn:errors:unavailable" and headers["Retry-After"]


def test_a_callback_ncts_refuses_is_a_400_not_a_503(
    api: Api, known_event: dict[str, Any], outbox: Partners
) -> None:
    outbox.outage("ncts", 422)
    status, headers, problem = api.send("POST", MATCHES, match(phone="+64 21 444 0009"))
    assert status == 400, problem
    assert "Retry-After" not in headers
