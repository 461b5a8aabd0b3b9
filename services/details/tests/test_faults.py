"""Faults, each taken away and given back while the app API works (issue 11): the AWS
endpoint gone (DynamoDB, S3, Secrets Manager, Cognito all at once), NCTS down then back for
diaries and callbacks (FCM down then back: test_exposure_events). Each outage is a 503 with
``Retry-After``; once the dependency is back the same request succeeds, nothing lost."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client
from conftest import Api
from sign_in_flow import SignedIn
from test_contact_details import RECORD
from test_exposure_event_matches import match
from test_exposure_events import event

from covidtracer import aws, settings
from tracerstack.faults import TcpProxy, with_port
from tracerstack.pytest_plugin import Partners

EVENTS = "/ncts/exposure-events"
PERSON = "+64 21 333 0001"


def _diary(code: str) -> dict[str, Any]:
    time = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="milliseconds")
    location = {"gln": "9429300000000", "locationName": "Cafe", "note": "", "entryType": 0,
                "time": time.replace("+00:00", "Z")}  # fmt: skip
    return {"consentCode": code, "locations": [location]}


def _consent_code(partners: Partners) -> str:
    request = urllib.request.Request(f"{partners.url}/consent-codes", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["consentCode"])


@pytest.fixture
def aws_proxy(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    from botocore.retries.standard import ExponentialBackoff

    # botocore's retries still run, without their backoff sleeps (seconds per failed call).
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    url = service_env["AWS_ENDPOINT_URL"]
    with TcpProxy.for_url(url, 80) as proxy:
        _point_aws_at(monkeypatch, with_port(url, proxy.port))
        yield proxy
        _point_aws_at(monkeypatch, url)  # later tests must not inherit the proxy


def _point_aws_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Every cached client, bound model and adapter forgotten, then built for ``url``."""
    from covidtracer import dynamo

    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    settings.reset()  # the settings and every adapter built from them (wiring)
    aws.reset()
    dynamo.reset()


def test_the_aws_endpoint_gone_is_a_503_everywhere_and_nothing_is_lost(
    member: SignedIn,
    aws_proxy: TcpProxy,
    api: Api,
    ncts_key: dict[str, str],
    outbox: Partners,
) -> None:
    me = member
    assert api.send("PUT", "/user/details", RECORD, me.headers)[0] == 200
    code = _consent_code(outbox)
    outbox.clear()
    aws_proxy.cut()
    calls: list[tuple[str, str, Any, dict[str, str]]] = [
        ("GET", "/user/details", None, me.headers),
        ("PATCH", "/user/details", {"gender": "Wahine"}, me.headers),
        ("POST", "/v2/user/location-history", _diary(code), {}),
        ("POST", "/v2/exposure-event-matches", match(), {}),
        ("POST", EVENTS, event("aws1"), ncts_key),
        ("GET", "/health", None, {}),
    ]
    for method, path, body, headers in calls:
        status, answer_headers, problem = api.send(method, path, body, headers)
        assert status == 503, (path, problem)
        if path != "/health":
            assert problem["type"] == "urn:errors:unavailable" and answer_headers["Retry-After"]
    assert outbox.outbox() == []  # nothing was half-sent while the store was gone

    aws_proxy.restore()
    assert api.send("GET", "/user/details", None, me.headers)[0] == 200
    status, _, details = api.send("PATCH", "/user/details", {"gender": "Wahine"}, me.headers)
    assert status == 200 and details["gender"] == "Wahine"
    assert api.send("POST", "/v2/user/location-history", _diary(code))[0] == 204
    assert api.send("POST", EVENTS, event("aws1"), ncts_key)[0] == 201
    assert api.send("GET", "/health")[0] == 200


def test_ncts_down_then_back_for_a_diary(api: Api, outbox: Partners) -> None:
    code = _consent_code(outbox)
    outbox.outage("ncts", 503)
    for _ in range(3):
        status, headers, _ = api.send("POST", "/v2/user/location-history", _diary(code))
        assert status == 503 and headers["Retry-After"]
    outbox.clear()
    assert api.send("POST", "/v2/user/location-history", _diary(code))[0] == 204
    assert [m["to"] for m in outbox.outbox()] == ["location-history"]


def test_ncts_down_then_back_for_a_callback(
    api: Api, ncts_key: dict[str, str], outbox: Partners
) -> None:
    assert api.send("POST", EVENTS, event("match1"), ncts_key)[0] in (200, 201)
    outbox.clear()
    outbox.outage("ncts", 502)
    for _ in range(3):
        assert api.send("POST", "/v2/exposure-event-matches", match(phone=PERSON))[0] == 503
    outbox.clear()
    assert api.send("POST", "/v2/exposure-event-matches", match(phone=PERSON))[0] == 204
    assert [m["to"] for m in outbox.outbox()] == ["callback-requests"]


def test_the_sign_in_survives_the_aws_endpoint_going_and_coming_back(
    aws_proxy: TcpProxy, service_env: dict[str, str], outbox: Partners, monkeypatch: Any
) -> None:
    from app import app
    from sign_in_flow import sign_in

    monkeypatch.setenv("SIGN_IN_MIN_DURATION_MS", "0")
    settings.reset()
    client_id = json.loads(service_env["APP_CLIENT_IDS"])["ios"]
    with Client(app) as client:
        aws_proxy.cut()
        response = client.http.post(
            "/user/auth/initiate",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"clientId": client_id, "email": "gone@example.nz"}),
        )
        assert response.status_code == 503
        aws_proxy.restore()
        assert sign_in(client, outbox, client_id).headers["Authorization"].startswith("Bearer ")
