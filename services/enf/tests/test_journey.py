"""The app's whole journey through the handler, against moto, the stand-ins and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg2
from chalice.test import Client
from conftest import Phone, daily_keys, request_code


def test_register_get_a_code_verify_and_upload_fourteen_keys(enf_env, outbox) -> None:
    from app import app

    onset = (datetime.now(UTC) - timedelta(days=3)).date()
    with Client(app) as client:
        phone = Phone(client)
        code = request_code(client, enf_env, outbox, onset=onset.isoformat())
        sms = [m for m in outbox.outbox() if m["channel"] == "sms"]
        assert sms[-1]["to"] == "+64210123456"
        verified = phone.verify(code)
        assert verified.status_code == 200, verified.body
        upload_token = verified.json_body["token"]
        keys = daily_keys(14)
        response = phone.upload(upload_token, keys)
        assert response.status_code == 204, response.body

    with psycopg2.connect(enf_env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT rolling_start_number, days_since_onset, report_type FROM exposures"
            " ORDER BY rolling_start_number"
        )
        rows = cur.fetchall()
    # Keys that ended before the onset day are dropped; the rest count days from onset.
    expected = []
    for key in keys:
        start_day = datetime.fromtimestamp(key["rollingStartNumber"] * 600, UTC).date()
        if start_day >= onset:
            expected.append((key["rollingStartNumber"], (start_day - onset).days, 1))
    assert rows == sorted(expected)
    assert [r[1] for r in rows] == [0, 1, 2, 3]
