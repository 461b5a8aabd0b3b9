"""Tests of this service import its ``app`` module from the service folder.

The rule tables live in the unit tier (shared/tests/unit/contactdetails, diary, exposures);
here is one HTTP test per journey and per error shape, so the fixtures are shared: one AWS
stack for the session (``aws_stack``) and one person signed in once (``member``), unless a
module needs a stage or a test an account of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.test import Client
from sign_in_flow import SignedIn
from sign_in_flow import sign_in as sign_in_through

from covidtracer import aws, config, dynamo
from tracerstack.bootstrap import Bootstrap
from tracerstack.environment import service_environment
from tracerstack.pytest_plugin import Partners, isolated_stage

# The anti-enumeration padding of initiate is dropped for tests that are not about sign-in
# (``test_sign_in`` keeps the real limits).
QUICK_SIGN_IN = {"SIGN_IN_MIN_DURATION_MS": "0"}
# The details app uses no PostgreSQL: its tests need no database of their own.
NO_DATABASE = "postgresql://unused/details"
# NCTS's retries run without their backoff sleeps: the outage tests need the retries, not
# the waiting (the backoff itself is tested in shared/tests/integration/exposures).
NO_BACKOFF = {"NCTS_BACKOFF_MS": "0"}


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


@pytest.fixture(scope="session")
def shared_stack(moto_endpoint: str) -> Iterator[Bootstrap]:
    """One stack for the whole session (tracerstack's is one per module: a bootstrap costs a
    second or two on this machine). Modules whose assertions need a stage nobody else wrote
    to (the exact feed, the stream's records, a deleted table, the real sign-in limits per
    address) take one of their own (``stack_of_its_own``)."""
    with isolated_stage(moto_endpoint) as boot:
        yield boot


@pytest.fixture(scope="session")
def aws_stack(shared_stack: Bootstrap) -> Bootstrap:
    return shared_stack


def stack_of_its_own() -> Any:
    """A module's own ``aws_stack`` (one per module, as tracerstack's): in the module,
    ``aws_stack = stack_of_its_own()``."""

    @pytest.fixture(scope="module", name="aws_stack")
    def own_stack(moto_endpoint: str) -> Iterator[Bootstrap]:
        with isolated_stage(moto_endpoint) as boot:
            yield boot

    return own_stack


@pytest.fixture(scope="module")
def stack_env(aws_stack: Bootstrap, partners: Partners) -> dict[str, str]:
    """The environment the app reads, pointed at the module's stack and the stand-ins."""
    return service_environment(
        aws_stack, partners_url=partners.url, database_url=NO_DATABASE, service="details"
    )


# The access key the cached AWS clients sign with.
_signing_as = [""]


@pytest.fixture
def service_env(
    stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """tracerstack's ``service_env``, except that the AWS clients outlive a test: they depend
    only on the region and the endpoint, one moto for the session, and rebuilding them
    (botocore parses its service models again) cost each test a tenth of a second. The
    settings and everything wired from them are still forgotten before and after each test;
    a test that moves the endpoint resets the clients itself (``test_faults``)."""
    env = dict(stack_env)
    if _signing_as[0] != env["AWS_ACCESS_KEY_ID"]:
        # Another stack's role: clients made with the last one's credentials would be refused.
        _forget_clients()
        _signing_as[0] = env["AWS_ACCESS_KEY_ID"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.reset()
    yield env
    if os.environ.get("AWS_ACCESS_KEY_ID") != env["AWS_ACCESS_KEY_ID"]:
        # The test signed as another stack's role: forget the clients it made.
        _forget_clients()
        _signing_as[0] = ""
    config.reset()


def _forget_clients() -> None:
    """Drop the AWS clients and bound models (they keep the credentials they signed with)."""
    aws.reset()
    dynamo.reset()


@pytest.fixture
def api(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from app import app

    for name, value in NO_BACKOFF.items():
        monkeypatch.setenv(name, value)
    config.reset()
    with Client(app) as client:
        yield Api(client)


@pytest.fixture
def ncts_key(service_env: dict[str, str], aws_stack: Bootstrap) -> dict[str, str]:
    secrets = aws_stack.client("secretsmanager")
    key = secrets.get_secret_value(SecretId=service_env["NCTS_API_KEY_SECRET_ID"])
    return {"x-api-key": key["SecretString"]}


@pytest.fixture
def sign_in(
    api: Api, outbox: Partners, service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[[], SignedIn]:
    """Signs a fresh person in through the API (the outbox's code); returns their token.
    For tests that need an account of their own (no record yet, two people)."""
    for name, value in QUICK_SIGN_IN.items():
        monkeypatch.setenv(name, value)
    config.reset()
    client_id = json.loads(service_env["APP_CLIENT_IDS"])["ios"]
    return lambda: sign_in_through(api.client, outbox, client_id)


@pytest.fixture(scope="session")
def member(shared_stack: Bootstrap, partners: Partners) -> SignedIn:
    """One person of the shared stack, signed in through the API once for the session: a
    valid access token for tests that need one but not an account of their own (a module
    with a stack of its own cannot use it)."""
    from app import app

    env = service_environment(
        shared_stack, partners_url=partners.url, database_url=NO_DATABASE, service="details"
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**env, **QUICK_SIGN_IN}.items():
            patch.setenv(name, value)
        config.reset()
        try:
            with Client(app) as client:
                return sign_in_through(client, partners, json.loads(env["APP_CLIENT_IDS"])["ios"])
        finally:
            config.reset()


@pytest.fixture
def known_event(api: Api, ncts_key: dict[str, str], outbox: Partners) -> dict[str, Any]:
    """An exposure event NCTS has sent (GLN known), with the outbox emptied after its push."""
    from test_exposure_events import event

    body = event("match1")
    assert api.send("POST", "/ncts/exposure-events", body, ncts_key)[0] in (200, 201)
    outbox.clear()
    return body
