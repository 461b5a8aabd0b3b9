"""Tests of this service import its ``app`` module from the service folder.

``enf_env`` is ``service_env`` with ``DATABASE_URL`` pointed at a migrated schema of the
test's own, through the RDS Proxy stand-in (``pooler``); ``Phone`` drives the API the way
the app does.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tracerstack.bootstrap import Bootstrap, admin_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture
def aws_role() -> str:
    """This service's tests sign as its execution role (``tracerstack.iam``)."""
    return "enf"


@pytest.fixture
def enf_env(
    service_env: dict[str, str],
    pg_schema: str,
    pg_schema_direct: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    import psycopg2

    from covidtracer import db, migrations, settings
    from covidtracer.enfkeys.schema import MIGRATIONS

    conn = psycopg2.connect(pg_schema_direct)  # the migrator holds a session lock
    migrations.migrate(conn, MIGRATIONS)
    conn.close()
    monkeypatch.setenv("DATABASE_URL", pg_schema)
    settings.reset()
    db.close()
    yield {**service_env, "DATABASE_URL": pg_schema}
    db.close()


@pytest.fixture
def client(enf_env: dict[str, str]) -> Iterator[Any]:
    """Chalice's test client on the app, with ``enf_env`` in force."""
    from app import app
    from chalice.test import Client

    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def enf_url(enf_env: dict[str, str]) -> Iterator[str]:
    """The app under ``chalice local`` (threaded, as the local stack runs it): its URL."""
    from tracerstack.pytest_plugin import serve_api

    with serve_api("enf", enf_env) as url:
        yield url


def sql(env: dict[str, str], statement: str, params: tuple[Any, ...] = ()) -> Any:
    """Run ``statement`` on the test's schema, on a connection of the test's own; its rows."""
    import psycopg2

    with psycopg2.connect(env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def secret(env: dict[str, str], name: str) -> str:
    """A secret's value, read as the administrator (as NCTS was handed its key)."""
    client = admin_client(env["AWS_ENDPOINT_URL"], "secretsmanager", env["AWS_REGION"])
    return str(client.get_secret_value(SecretId=env[name])["SecretString"])


def app_hash(code: str) -> str:
    return hashlib.sha512(code[:3].encode()).hexdigest() + hashlib.sha512(code.encode()).hexdigest()


class Phone:
    """A registered phone talking to the API through Chalice's test client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        nonce = self.call("POST", "/register", {})["nonce"]
        tokens = self.call(
            "PUT",
            "/register",
            {"nonce": nonce, "platform": "test", "deviceVerificationPayload": "ok"},
        )
        self.token = tokens["token"]
        self.refresh_token = tokens["refreshToken"]

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        bearer = token if token is not None else getattr(self, "token", None)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return self.client.http.request(
            method, path, headers=headers, body=b"" if body is None else json.dumps(body).encode()
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.request(method, path, body)
        assert response.status_code in (200, 201), (response.status_code, response.body)
        return json.loads(response.body)

    def verify(self, code: str) -> Any:
        return self.request("POST", "/exposures/verify", {"hash": app_hash(code)})

    def upload(self, upload_token: str, keys: list[dict[str, Any]]) -> Any:
        return self.request(
            "POST",
            "/exposures",
            {
                "token": upload_token,
                "exposures": keys,
                "platform": "test",
                "deviceVerificationPayload": "ok",
            },
        )


def request_code(
    client: Any,
    env: dict[str, str],
    outbox: Any,
    *,
    phone: str = "+64 21 012 3456",
    onset: str | None = None,
    test_type: str | None = None,
) -> str:
    """NCTS asks for a code; returns the code read from the SMS in the outbox."""
    body: dict[str, Any] = {
        "phone": phone,
        "symptomOnset": onset or (datetime.now(UTC) - timedelta(days=3)).date().isoformat(),
    }
    if test_type:
        body["testType"] = test_type
    response = client.http.post(
        "/ncts/verification-codes",
        headers={
            "Content-Type": "application/json",
            "x-api-key": secret(env, "NCTS_API_KEY_SECRET_ID"),
        },
        body=json.dumps(body),
    )
    assert response.status_code == 201, response.body
    sms = [m for m in outbox.outbox() if m["channel"] == "sms"]
    match = re.search(r"\b(\d{6})\b", sms[-1]["body"])
    assert match
    return match.group(1)


@pytest.fixture
def apple_devicecheck_key(
    enf_env: dict[str, str], aws_stack: Bootstrap, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A DeviceCheck signing key (.p8) in the stack's own secret, put there by the
    administrator as an operator does (docs/operations.md, "A new stage"), and the ids the iOS
    verifier signs its team JWT with; returns the secret's ARN. Call ``settings.reset()``
    after it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    arn = aws_stack.outputs["AppleDeviceCheckKeySecretArn"]
    aws_stack.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=pem.decode())
    monkeypatch.setenv("APPLE_TEAM_ID", "TEAM123456")
    monkeypatch.setenv("APPLE_KEY_ID", "KEY1234567")
    monkeypatch.setenv("APPLE_DEVICECHECK_KEY_SECRET_ID", arn)
    return arn
