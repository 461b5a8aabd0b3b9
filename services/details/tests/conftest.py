"""Tests of this service import its ``app`` module from the service folder."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.test import Client
from sign_in_flow import SignedIn
from sign_in_flow import sign_in as sign_in_through

from tracerstack.bootstrap import Bootstrap


class Api:
    """The app over Chalice's test client, speaking JSON."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        raw = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
        response = self.client.http.request(
            method,
            path,
            body=raw if raw is not None else b"",
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        text = response.body.decode() if response.body else ""
        return response.status_code, dict(response.headers), json.loads(text) if text else None


@pytest.fixture
def api(service_env: dict[str, str]) -> Iterator[Api]:
    from app import app

    with Client(app) as client:
        yield Api(client)


@pytest.fixture
def ncts_key(service_env: dict[str, str], aws_stack: Bootstrap) -> dict[str, str]:
    secrets = aws_stack.client("secretsmanager")
    key = secrets.get_secret_value(SecretId=service_env["NCTS_API_KEY_SECRET_ID"])
    return {"x-api-key": key["SecretString"]}


@pytest.fixture
def sign_in(
    api: Api, outbox: Any, service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[[], SignedIn]:
    """Signs a fresh person in through the API (the outbox's code); returns their token.

    Every test client calls from one address, so the per-IP throttle is lifted, and the
    anti-enumeration padding of initiate is dropped: tests that use this are not about
    sign-in (``test_sign_in`` keeps the real limits)."""
    from covidtracer import settings

    monkeypatch.setenv("SIGN_IN_LIMIT_PER_IP", "100000")
    monkeypatch.setenv("SIGN_IN_MIN_DURATION_MS", "0")
    settings.reset()
    client_id = json.loads(service_env["APP_CLIENT_IDS"])["ios"]
    return lambda: sign_in_through(api.client, outbox, client_id)


@pytest.fixture
def known_event(api: Api, ncts_key: dict[str, str], outbox: Any) -> dict[str, Any]:
    """An exposure event NCTS has sent (GLN known), with the outbox emptied after its push."""
    from test_exposure_events import event

    body = event("match1")
    assert api.send("POST", "/ncts/exposure-events", body, ncts_key)[0] in (200, 201)
    outbox.clear()
    return body
