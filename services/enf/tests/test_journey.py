"""The app's whole journey through the handler, against moto, the stand-ins and PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
from chalice.test import Client
from conftest import Phone, request_code

from tracerstack.samples import daily_keys, interval

# Days since onset the shipped exposure configuration scores as infectious (-5 .. +10).
INFECTIOUS = range(-5, 11)


def _stored(env: dict[str, str]) -> list[tuple[int, int, int]]:
    with psycopg2.connect(env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT rolling_start_number, days_since_onset, report_type FROM exposures"
            " ORDER BY rolling_start_number"
        )
        return cur.fetchall()


def _upload(env: dict[str, str], outbox: Any, onset_days_ago: int, keys: list[dict[str, Any]]):
    from app import app

    onset = (datetime.now(UTC) - timedelta(days=onset_days_ago)).date()
    with Client(app) as client:
        phone = Phone(client)
        code = request_code(client, env, outbox, onset=onset.isoformat())
        verified = phone.verify(code)
        assert verified.status_code == 200, verified.body
        return onset, phone.upload(verified.json_body["token"], keys)


def test_a_case_shares_fifteen_keys_and_those_of_infectious_days_are_stored(
    enf_env, outbox
) -> None:
    keys = daily_keys(15)  # today's key and 14 days (CLIENTS.md: phones send more than 14)
    onset, response = _upload(enf_env, outbox, 3, keys)
    assert response.status_code == 204, response.body
    sms = [m for m in outbox.outbox() if m["channel"] == "sms"]
    assert sms[-1]["to"] == "+64210123456"
    # Kept exactly on the days the served configuration scores as infectious (item 4):
    # before the onset too, which phones score, and never on a day they would ignore.
    expected = []
    for key in keys:
        start_day = datetime.fromtimestamp(key["rollingStartNumber"] * 600, UTC).date()
        days = (start_day - onset).days
        if days in INFECTIOUS:
            expected.append((key["rollingStartNumber"], days, 1))
    assert _stored(enf_env) == sorted(expected)
    assert [r[1] for r in _stored(enf_env)] == [-5, -4, -3, -2, -1, 0, 1, 2, 3]


def _half_day_keys(days: int) -> list[dict[str, Any]]:
    """Two keys a day (exposure notifications switched off and on at noon), ``days`` days."""
    today = interval(datetime.now(UTC)) // 144 * 144
    return [
        {
            "keyData": base64.b64encode(os.urandom(16)).decode(),
            "rollingStartNumber": today - 144 * day + half,
            "rollingPeriod": 72,
            "transmissionRiskLevel": 0,
        }
        for day in range(days)
        for half in (0, 72)
        if today - 144 * day + half <= interval(datetime.now(UTC))
    ]


def test_thirty_keys_are_stored_and_thirty_one_are_refused(enf_env, outbox) -> None:
    keys = _half_day_keys(16)[:30]
    assert len(keys) == 30
    _, response = _upload(enf_env, outbox, 10, keys)
    assert response.status_code == 204, response.body
    assert len(_stored(enf_env)) == 30
    too_many = [*_half_day_keys(16)[:30], *daily_keys(1, datetime.now(UTC) - timedelta(days=20))]
    _, refused = _upload(enf_env, outbox, 10, too_many)
    assert refused.status_code == 400
    body = json.loads(refused.body)
    assert body["type"] == "urn:errors:validation"
    assert body["errors"] == {"Exposures": ["Send between 1 and 30 keys."]}
