"""Issue 11 against the app API: hostile input is a documented 4xx, input a dependency
refused is not a 503, and limits count what an attacker controls, not what they can spend
of someone else's allowance. One test (or table) per numbered failure of the issue."""

from __future__ import annotations

import json
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


@pytest.fixture
def credentials(member: SignedIn, ncts_key: dict[str, str]) -> dict[str | None, dict[str, str]]:
    return {None: {}, "bearer": member.headers, "ncts": ncts_key}


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


def test_a_lone_surrogate_in_gender_is_a_400_not_a_503(api: Api, member: SignedIn) -> None:
    me = member
    body = '{"firstName": "Aroha", "lastName": "Smith", "phone": "+64 21 012 3456", '
    body += '"gender": "\\ud83d"}'
    status, _, problem = api.send("PUT", "/user/details", body, me.headers)
    assert status == 400, problem


# ------------------------------------------------- 4, 5, 7: limits, guesses, control characters
#
# The limits that must not lock people out (junk callbacks with someone's phone, refunds of
# 503s, one limit's refusal not counted by another), the consent-code guess limits and the
# control characters of every field are rule tables of the unit tier
# (shared/tests/unit/exposures, diary, contactdetails).


# ---------------------------------------------------------------------- 8: one NCTS key check


def test_the_ncts_key_unreadable_is_a_503(
    api: Api, monkeypatch: pytest.MonkeyPatch, iam_denials: Any
) -> None:
    monkeypatch.setenv("NCTS_API_KEY_SECRET_ID", "covidtracer/nowhere/ncts-api-key")
    settings.reset()
    status, headers, problem = api.send("POST", EVENTS, event("k1"), {"x-api-key": "guess"})
    assert status == 503, problem
    assert problem["type"] == "urn:errors:unavailable" and headers["Retry-After"]
    # A secret outside the role is refused by IAM, exists or not (as in AWS).
    assert [d.action for d in iam_denials()] == ["secretsmanager:GetSecretValue"]


def test_a_callback_ncts_refuses_is_a_400_not_a_503(
    api: Api, known_event: dict[str, Any], outbox: Partners
) -> None:
    outbox.outage("ncts", 422)
    status, headers, problem = api.send("POST", MATCHES, match(phone="+64 21 444 0009"))
    assert status == 400, problem
    assert "Retry-After" not in headers
