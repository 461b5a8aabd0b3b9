"""The passwordless sign-in flow as a test drives it: initiate, read the emailed code from
the outbox, confirm. Shared by the sign-in tests and by every test that needs a real access
token (contact details)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from chalice.test import Client

from tracerstack.pytest_plugin import Partners


def new_email() -> str:
    return f"person-{uuid.uuid4().hex[:12]}@example.nz"


def post(client: Client, path: str, body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = client.http.post(
        path,
        headers={"Content-Type": "application/json"},
        body=body if isinstance(body, str) else json.dumps(body),
    )
    return response.status_code, json.loads(response.body or b"{}"), response.headers


def codes_sent_to(outbox: Partners, email: str) -> list[str]:
    codes = []
    for item in outbox.outbox():
        if item["channel"] == "email" and item["to"] == email:
            found = re.findall(r"\b\d{6}\b", item["body"])
            assert len(set(found)) == 1, "one code per email"
            codes.append(found[0])
    return codes


def initiate(client: Client, client_id: str, email: str) -> dict[str, Any]:
    status, body, _ = post(client, "/user/auth/initiate", {"clientId": client_id, "email": email})
    assert status == 200, body
    return body


def confirm(
    client: Client, client_id: str, email: str, code: str, verification_id: str
) -> tuple[int, dict[str, Any]]:
    status, body, _ = post(
        client,
        "/user/auth/confirm",
        {"clientId": client_id, "email": email, "code": code, "verificationId": verification_id},
    )
    return status, body


@dataclass(frozen=True)
class SignedIn:
    email: str
    user_id: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def sign_in(client: Client, outbox: Partners, client_id: str, email: str | None = None) -> SignedIn:
    """A fresh person (or ``email``) signed in through the API; their real access token."""
    email = email or new_email()
    started = initiate(client, client_id, email)
    code = codes_sent_to(outbox, email)[-1]
    status, body = confirm(client, client_id, email, code, started["verificationId"])
    assert status == 200, body
    return SignedIn(email, body["userId"], body["accessToken"])
