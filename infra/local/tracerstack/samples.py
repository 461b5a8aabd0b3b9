"""What the real senders send, for tests and benchmarks: Cognito trigger events (the shape of
the Cognito developer guide's samples) and a phone's ENF key upload. Dev-only; never ships."""

from __future__ import annotations

import base64
import copy
import os
from datetime import UTC, datetime
from typing import Any

COGNITO_USER_SUB = "2f1d7b2e-3c4a-4a59-9d0a-6f1f6a0c8b11"
COGNITO_COMMON = {
    "version": "1",
    "region": "ap-southeast-2",
    "userPoolId": "ap-southeast-2_EXAMPLE",
    "userName": COGNITO_USER_SUB,
    "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "1example23456789"},
}


def cognito_trigger_event(
    trigger_source: str, request: dict[str, Any], response: dict[str, Any]
) -> dict[str, Any]:
    """A fresh Cognito Lambda trigger event (a deep copy: the handler may write to it)."""
    return copy.deepcopy(
        {
            **COGNITO_COMMON,
            "triggerSource": trigger_source,
            "request": request,
            "response": response,
        }
    )


def interval(moment: datetime) -> int:
    """The ENF interval number (10-minute steps since the epoch) of ``moment``."""
    return int(moment.timestamp()) // 600


def daily_keys(count: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """``count`` random consecutive daily keys ending with today's (the app's upload shape)."""
    today = interval(now or datetime.now(UTC)) // 144 * 144
    return [
        {
            "keyData": base64.b64encode(os.urandom(16)).decode(),
            "rollingStartNumber": today - 144 * day,
            "rollingPeriod": 144,
            "transmissionRiskLevel": 0,
        }
        for day in range(count)
    ]
