"""An ENX phone for tests, the README's journey and the bench: what a phone on Apple's and
Google's Exposure Notifications Express (or an app on Google's reference servers) does with
Google's verification and key-server contracts. Written from Google's documents, apart from
the service's code, so tests hold the two against each other (dev-only: never shipped).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from tracerstack.samples import daily_keys

# (status, body) of a POST of ``body`` to ``path`` with ``headers``.
Post = Callable[[str, dict[str, Any], dict[str, str]], tuple[int, Any]]


def tekmac(keys: Sequence[dict[str, Any]], secret: bytes) -> str:
    """exposure-notifications-server docs/design/verification_protocol.md: HMAC-SHA256 under
    the device's secret over the keys sorted by their base64 text, each
    ``key.rollingStartNumber.rollingPeriod.transmissionRisk``, joined by ``,``; base64."""
    lines = sorted(
        f"{k['key']}.{k['rollingStartNumber']}.{k['rollingPeriod']}.{k.get('transmissionRisk', 0)}"
        for k in keys
    )
    return base64.b64encode(
        hmac.new(secret, ",".join(lines).encode(), hashlib.sha256).digest()
    ).decode()


def enx_keys(
    days: int, now: datetime | None = None, first_day_back: int = 1
) -> list[dict[str, Any]]:
    """``days`` daily keys in Google's field names, from ``first_day_back`` days ago back."""
    return [
        {
            "key": key["keyData"],
            "rollingStartNumber": key["rollingStartNumber"],
            "rollingPeriod": key["rollingPeriod"],
            "transmissionRisk": key["transmissionRiskLevel"],
        }
        for key in daily_keys(first_day_back + days, now)[first_day_back:]
    ]


def jwt_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWT, unverified."""
    header, claims, _ = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(claims)


class EnxPhone:
    """One phone's upload: code -> token -> certificate -> publish, over ``post``."""

    def __init__(self, post: Post, api_key: str, health_authority_id: str) -> None:
        self.post = post
        self.api_key = api_key
        self.health_authority_id = health_authority_id
        self.secret = os.urandom(32)
        self.revision_token = ""

    def verify(self, code: str, accept: list[str] | None = None) -> tuple[int, Any]:
        body: dict[str, Any] = {"code": code, "padding": base64.b64encode(os.urandom(64)).decode()}
        if accept is not None:
            body["accept"] = accept
        return self.post("/api/verify", body, {"X-API-Key": self.api_key})

    def certificate(self, token: str, keys: Sequence[dict[str, Any]]) -> tuple[int, Any]:
        body = {"token": token, "ekeyhmac": tekmac(keys, self.secret)}
        return self.post("/api/certificate", body, {"X-API-Key": self.api_key})

    def publish(
        self, certificate: str, keys: Sequence[dict[str, Any]], **extra: Any
    ) -> tuple[int, Any]:
        body = {
            "temporaryExposureKeys": list(keys),
            "healthAuthorityID": self.health_authority_id,
            "verificationPayload": certificate,
            "hmacKey": base64.b64encode(self.secret).decode(),
            "revisionToken": self.revision_token,
            "padding": base64.b64encode(os.urandom(128)).decode(),
            **extra,
        }
        status, answer = self.post("/v1/publish", body, {})
        if status == 200 and answer.get("revisionToken"):
            self.revision_token = answer["revisionToken"]
        return status, answer

    def share(self, code: str, keys: Sequence[dict[str, Any]]) -> tuple[int, Any]:
        """The whole upload; the publish's (status, answer). Asserts each step succeeds."""
        status, verified = self.verify(code)
        assert status == 200, (status, verified)
        status, certified = self.certificate(verified["token"], keys)
        assert status == 200, (status, certified)
        return self.publish(certified["certificate"], keys)
