"""The cleanup schedule and the migrate function as Lambda calls them; nothing secret is logged."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import psycopg2
import pytest
from chalice.test import Client
from conftest import Phone, app_hash, request_code

from tracerstack.samples import daily_keys

SCHEDULED_EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2021-10-20T09:00:00Z",
    "region": "ap-southeast-2",
    "resources": ["arn:aws:events:ap-southeast-2:123456789012:rule/cleanup"],
    "detail": {},
}
CONTEXT = SimpleNamespace(aws_request_id="r-1", function_name="cleanup")


def test_the_hourly_cleanup_runs_as_eventbridge_invokes_it(enf_env: dict[str, str]) -> None:
    from app import app, cleanup

    with psycopg2.connect(enf_env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO exposures (key_data, rolling_start_number, rolling_period,"
            " transmission_risk_level, created_at) VALUES"
            " ('\\x00000000000000000000000000000001', 1, 144, 0, now() - interval '15 days'),"
            " ('\\x00000000000000000000000000000002', 1, 144, 0, now() - interval '13 days')"
        )
    assert "cleanup" in {f.name for f in app.event_sources}
    result = cleanup(SCHEDULED_EVENT, CONTEXT)
    assert result["keys"] == 1
    assert result["files"] == 0  # the export files' retention runs in the same job


def test_the_migrate_function_reports_what_it_ran(
    service_env: dict[str, str], pg_schema_direct: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import migrate

    from covidtracer import settings

    # The migrator's session lock pins its connection behind RDS Proxy; a transaction pooler
    # cannot hold it at all, so here it connects to the server itself.
    monkeypatch.setenv("DATABASE_URL", pg_schema_direct)
    settings.reset()
    migrations = [
        "0001_enf_api",
        "0002_exports",
        "0003_export_day_index",
        "0004_hardening",
        "0005_statement_timeout",
        "0006_guessing",
        "0007_google_contract",
        "0008_key_mask",
    ]
    assert migrate({}, CONTEXT) == {"ran": [f"up {name}" for name in migrations]}
    assert migrate({}, CONTEXT) == {"ran": []}
    assert migrate({"target": 0}, CONTEXT) == {"ran": [f"down {name}" for name in migrations[::-1]]}


def test_no_code_hash_key_or_phone_reaches_the_logs(
    enf_env: dict[str, str], outbox: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from app import app

    keys = daily_keys(14)
    with Client(app) as client:
        phone = Phone(client)
        code = request_code(client, enf_env, outbox, phone="+64 21 999 8888")
        token = json.loads(phone.verify(code).body)["token"]
        assert phone.upload(token, keys).status_code == 204
        wrong = phone.verify("999999")  # a refused guess is logged too
        assert wrong.status_code in (403, 429)
    logged = capsys.readouterr().out
    assert '"status": 204' in logged  # the access log did run
    secrets_seen = [code, app_hash(code), app_hash("999999"), "+64219998888", "21 999 8888"]
    secrets_seen += [k["keyData"] for k in keys]
    secrets_seen += [
        base64.b16encode(base64.b64decode(k["keyData"])).decode().lower() for k in keys
    ]
    for value in secrets_seen:
        assert value not in logged
    assert token not in logged and phone.token not in logged
