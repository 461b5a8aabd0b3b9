"""openapi.yaml describes exactly the app's routes, and schema-based fuzzing of it over real
HTTP (``chalice local`` on a private port) finds no 5xx."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Api
from sign_in_flow import SignedIn
from test_contact_details import RECORD

from tracerstack.pytest_plugin import Partners, serve_api

SERVICE = Path(__file__).resolve().parents[1]
OPENAPI = SERVICE / "openapi.yaml"
METHODS = ("get", "put", "post", "patch", "delete")

# Routes documented ahead of their implementation (marked `x-status: planned`); every
# documented route must exist except these. Empty: everything documented is built.
PLANNED_ROUTES: frozenset[tuple[str, str]] = frozenset()


def documented_routes(*, planned_only: bool = False) -> set[tuple[str, str]]:
    spec = yaml.safe_load(OPENAPI.read_text())
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item and (not planned_only or item[method].get("x-status") == "planned")
    }


def app_routes() -> set[tuple[str, str]]:
    from app import app

    return {(method, path) for path, entries in app.routes.items() for method in entries}


def test_every_route_of_the_app_is_documented() -> None:
    assert app_routes() - documented_routes() == set()


def test_every_documented_route_exists_except_the_named_planned_ones() -> None:
    print(f"documented but not built yet (PLANNED_ROUTES): {sorted(PLANNED_ROUTES)}")
    assert documented_routes() - app_routes() == set(PLANNED_ROUTES)
    assert documented_routes(planned_only=True) == set(PLANNED_ROUTES), (
        "x-status: planned must match the list"
    )


@pytest.fixture(scope="module")
def chalice_local(stack_env: dict[str, str]) -> Iterator[str]:
    """The app under ``chalice local`` on a free port (once for the module), with the test
    stack's environment."""
    with serve_api("details", stack_env) as url:
        yield url


def test_a_real_http_round_trip_through_chalice_local(
    chalice_local: str, service_env: dict[str, str]
) -> None:
    request = urllib.request.Request(
        f"{chalice_local}/v2/user/location-history",
        data=json.dumps({"consentCode": "A1B2C3", "locations": []}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert json.load(caught.value)["errors"] == {"Locations": ["Send at least one location."]}
    assert caught.value.headers["Cache-Control"] == "no-store"


def test_the_details_the_app_returns_match_the_documented_schema(
    api: Api, member: SignedIn
) -> None:
    import jsonschema

    schema = yaml.safe_load(OPENAPI.read_text())["components"]["schemas"]["Details"]
    me = member
    for method, body in (("PUT", RECORD), ("GET", None), ("PATCH", {"gender": None})):
        status, _, answer = api.send(method, "/user/details", body, me.headers)
        assert status == 200, answer
        jsonschema.validate(answer, schema)
    assert "gender" not in answer


def test_fuzzing_the_description_finds_no_server_error(
    chalice_local: str,
    ncts_key: dict[str, str],
    outbox: Partners,
    member: SignedIn,
) -> None:
    """Schema-based fuzzing (tracerstack.fuzzing.fuzz): 12 valid and 12 invalid requests
    per documented operation."""
    from tracerstack.fuzzing import fuzz

    def headers_for(method: str, path: str) -> dict[str, str]:
        if path.startswith("/ncts/"):
            return ncts_key
        # past the token check, into validation and storage
        return member.headers if path == "/user/details" else {}

    statuses, failures = fuzz(
        str(OPENAPI), chalice_local, headers_for, examples=12, skip=PLANNED_ROUTES
    )
    tried = len(statuses)
    print(json.dumps({"details_fuzzed_requests": tried, "details_5xx": len(failures)}))
    assert tried > 50
    assert failures == []


def test_hostile_values_in_every_field_of_every_route_find_no_server_error(
    chalice_local: str,
    ncts_key: dict[str, str],
    outbox: Partners,
    member: SignedIn,
    service_env: dict[str, str],
) -> None:
    """Mutational fuzzing from valid requests (tracerstack.fuzzing.attack): the issue's
    hostile inputs (deep nesting, lone surrogates, look-alike digits, unhashable types,
    control characters, wrong methods) in every field and method of the API."""
    from collections import Counter

    from tracerstack.fuzzing import attack

    bearer = member.headers
    client_id = json.loads(service_env["APP_CLIENT_IDS"])["ios"]
    location = {"gln": "9429300000000", "locationName": "Cafe", "note": "n", "entryType": 0,
                "time": "2021-10-04T21:05:12.000Z"}  # fmt: skip
    event = {"eventId": "a0l4a0000004xhcAAA", "notificationId": "fuzz1", "gln": "1234567890001",
             "start": "2021-10-04T21:00:00Z", "end": "2021-10-04T22:00:00Z",
             "systemNotificationBody": "b", "appBannerTitle": "t", "appBannerBody": "b",
             "appBannerLinkLabel": "l", "appBannerLinkUrl": "https://x.nz",
             "appBannerRequestCallbackEnabled": False}  # fmt: skip
    routes: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/user/auth/initiate"): {"clientId": client_id, "email": "fuzz@example.nz"},
        ("POST", "/user/auth/confirm"): {"clientId": client_id, "email": "fuzz@example.nz",
                                         "code": "123456", "verificationId": "v"},
        ("PUT", "/user/details"): RECORD,
        ("PATCH", "/user/details"): {"gender": "x"},
        ("GET", "/user/details"): {},
        ("DELETE", "/user/details"): {},
        ("POST", "/v2/user/location-history"): {"consentCode": "A1B2C3",
                                                "locations": [location]},
        ("POST", "/v2/exposure-event-matches"): {"eventId": "a0l4a0000004xhcAAA",
                                                 "notificationId": "fuzz1",
                                                 "gln": "1234567890001", "firstName": "A",
                                                 "lastName": "S", "phone": "+64210123456",
                                                 "contactNotes": "c"},
        ("POST", "/ncts/exposure-events"): event,
        ("DELETE", "/ncts/exposure-events/fuzz1"): {},
        ("GET", "/health"): {"query": {"x": 1}},
    }  # fmt: skip

    def headers_for(method: str, path: str) -> dict[str, str]:
        if path.startswith("/ncts/"):
            return ncts_key
        return bearer if path == "/user/details" else {}

    statuses, failures = attack(chalice_local, routes, headers_for)
    print(json.dumps({"details_hostile_requests": len(statuses), "details_5xx": len(failures),
                      "statuses": dict(sorted(Counter(statuses).items()))}))  # fmt: skip
    assert failures == []
    assert len(statuses) > 600
