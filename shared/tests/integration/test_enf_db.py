"""The ENF schema and SQL on a real PostgreSQL: migrations, concurrent uploads, retention."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg2
import pytest

from covidtracer import db, migrations
from covidtracer.enfkeys import db as sql
from covidtracer.enfkeys import model, service, wiring
from covidtracer.enfkeys.model import ExposureKey, StoredKey
from covidtracer.enfkeys.schema import MIGRATIONS
from covidtracer.enfkeys.settings import EnfSettings
from covidtracer.publish import db as publish_sql
from covidtracer.verification import db as verification_sql

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def dsn(pg_schema: str, pg_schema_direct: str) -> Iterator[str]:
    conn = psycopg2.connect(pg_schema_direct)
    migrations.migrate(conn, MIGRATIONS)
    conn.close()
    yield pg_schema
    db.close()


@pytest.fixture
def settings(dsn: str, enf_environ: dict[str, str]) -> EnfSettings:
    return EnfSettings.from_env({**enf_environ, "DATABASE_URL": dsn})


def _tables(dsn: str) -> set[str]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {row[0] for row in cur.fetchall()}


def test_the_migrations_go_up_and_down_cleanly(pg_schema: str, pg_schema_direct: str) -> None:
    conn = psycopg2.connect(pg_schema_direct)
    assert migrations.migrate(conn, MIGRATIONS) == [
        "up 0001_enf_api",
        "up 0002_exports",
        "up 0003_export_day_index",
        "up 0004_hardening",
        "up 0005_statement_timeout",
        "up 0006_guessing",
        "up 0007_google_contract",
        "up 0008_key_mask",
    ]
    assert {
        "exposures",
        "registrations",
        "verification_codes",
        "upload_tokens",
        "export_files",
        "export_lease",
        "rate_limits",
        "verification_tokens",
        "revision_keys",
        "publish_certificates",
        "key_mask",
    } <= _tables(pg_schema)
    assert migrations.migrate(conn, MIGRATIONS, target=0) == [
        "down 0008_key_mask",
        "down 0007_google_contract",
        "down 0006_guessing",
        "down 0005_statement_timeout",
        "down 0004_hardening",
        "down 0003_export_day_index",
        "down 0002_exports",
        "down 0001_enf_api",
    ]
    assert _tables(pg_schema) == {"schema_migrations"}
    conn.close()


def _registration(cur: object, now: datetime = NOW) -> uuid.UUID:
    registration_id = uuid.uuid4()
    sql.insert_registration(cur, registration_id, uuid.uuid4().hex * 2, now)  # type: ignore[arg-type]
    cur.execute(  # type: ignore[attr-defined]
        "UPDATE registrations SET nonce = NULL, verified_at = %s, refreshed_at = %s WHERE id = %s",
        (now, now, str(registration_id)),
    )
    return registration_id


def _claimed(onset: date | None = None) -> sql.Claimed:
    return sql.Claimed(onset or NOW.date(), 1, NOW + timedelta(hours=24))


def _key(fill: int) -> StoredKey:
    return StoredKey(bytes([fill]) * 16, 2_700_000, 144, 0, 1, 0)


def _insert_key(cur: Any, key: StoredKey, created_at: datetime) -> None:
    cur.execute(
        "INSERT INTO exposures (key_data, rolling_start_number, rolling_period,"
        " transmission_risk_level, report_type, days_since_onset, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (*dataclasses.astuple(key), created_at),
    )


def _fifty_at_once(attempt: Any) -> list[int]:
    """Runs ``attempt(index)`` in 50 threads released together; the indexes that won."""
    start = threading.Barrier(50)
    wins: list[int] = []
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            if attempt(index):
                wins.append(index)
        except BaseException as exc:  # surfaced below: a thread must not fail silently
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return wins


def _stored_keys(dsn: str) -> list[bytes]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT key_data FROM exposures")
        return [bytes(row[0]) for row in cur.fetchall()]


def _token(
    cur: Any, expires_at: datetime = NOW + timedelta(1), onset: date | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    registration_id = _registration(cur)
    token = uuid.uuid4()
    sql.insert_upload_token(cur, token, registration_id, _claimed(onset), NOW, expires_at)
    return token, registration_id


# The days the shipped exposure configuration scores as infectious.
INFECTIOUS = frozenset(range(-5, 11))


def test_fifty_concurrent_one_statement_uploads_of_one_token_give_exactly_one_success(
    dsn: str,
) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        token, registration_id = _token(cur)
    today = int(NOW.timestamp()) // 86_400 * 144

    def upload(index: int) -> bool:
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                key = ExposureKey(bytes([index]) * 16, today, 144, 0)
                stored = sql.claim_and_insert_keys(
                    cur, token, registration_id, [key], NOW, infectious_days=INFECTIOUS
                )
                return stored is not None
        finally:
            conn.close()

    wins = _fifty_at_once(upload)
    assert len(wins) == 1
    assert _stored_keys(dsn) == [bytes([wins[0]]) * 16]


def test_the_one_statement_upload_stores_exactly_what_the_model_keeps(dsn: str) -> None:
    today = int(NOW.timestamp()) // 86_400 * 144
    keys = [  # 16 days of keys, some not starting at midnight, and one shorter than a day
        ExposureKey(bytes([day, offset]) * 8, today - 144 * day + offset, 144 - offset, 2)
        for day in range(16)
        for offset in (0, 71)
    ] + [ExposureKey(b"s" * 16, today - 144 * 5, 10, 0)]
    every_day = frozenset(range(-14, 15))
    configurations = [INFECTIOUS, every_day, frozenset({-2, 0, 7}), frozenset()]
    for onset_days_ago, days in [
        (3, INFECTIOUS),
        (0, INFECTIOUS),
        (15, every_day),
        (-1, INFECTIOUS),
    ] + [(5, days) for days in configurations]:
        onset = NOW.date() - timedelta(days=onset_days_ago)
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM exposures")
            token, registration_id = _token(cur, onset=onset)
            stored = sql.claim_and_insert_keys(
                cur, token, registration_id, keys, NOW, infectious_days=days
            )
            cur.execute(
                "SELECT key_data, rolling_start_number, rolling_period, transmission_risk_level,"
                " report_type, days_since_onset FROM exposures"
            )
            rows = {StoredKey(bytes(r[0]), *r[1:]) for r in cur.fetchall()}
        expected = model.keys_to_store(
            keys, symptom_onset=onset, report_type=1, infectious_days=days
        )
        assert rows == set(expected), (onset_days_ago, sorted(days))
        assert stored == len(expected)


def test_a_one_statement_upload_claims_nothing_with_a_used_expired_or_other_token(
    dsn: str,
) -> None:
    key = ExposureKey(b"k" * 16, int(NOW.timestamp()) // 600, 1, 0)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        expired, owner = _token(cur, expires_at=NOW)
        used, user = _token(cur)
        assert (
            sql.claim_and_insert_keys(cur, used, user, [key], NOW, infectious_days=INFECTIOUS) == 1
        )
        other = _registration(cur)
        for token, registration in [(expired, owner), (used, user), (used, other)]:
            assert (
                sql.claim_and_insert_keys(
                    cur, token, registration, [key], NOW, infectious_days=INFECTIOUS
                )
                is None
            )
        assert sql.upload_token_state(cur, expired, owner) == (False, NOW)
        assert sql.upload_token_state(cur, used, user) == (True, NOW + timedelta(1))
        assert sql.upload_token_state(cur, used, other) is None
        cur.execute("SELECT count(*) FROM exposures")
        assert cur.fetchone() == (1,)


def test_cleanup_deletes_exactly_what_is_past_retention(dsn: str, settings: EnfSettings) -> None:
    edge = timedelta(minutes=1)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        live = _registration(cur)
        idle = _registration(cur, NOW - timedelta(days=365) - edge)
        sql.insert_registration(cur, uuid.uuid4(), "a" * 64, NOW - timedelta(hours=1) - edge)
        sql.insert_registration(cur, uuid.uuid4(), "b" * 64, NOW - timedelta(hours=1) + edge)
        for age, fill in ((timedelta(days=14) + edge, 1), (timedelta(days=14) - edge, 2)):
            _insert_key(cur, _key(fill), NOW - age)
        for age, fill in ((timedelta(hours=24) + edge, 1), (timedelta(hours=24) - edge, 2)):
            sql.insert_code(cur, bytes([fill]) * 32, NOW.date(), 1, NOW - age, NOW - age)
            sql.insert_upload_token(
                cur, uuid.uuid4(), live, _claimed(), NOW - age, NOW - age + timedelta(hours=24)
            )
            # Google's contract: verification tokens (24 h) and remembered certificates (24 h).
            claim = verification_sql.Claim("claimed", 1, NOW.date())
            verification_sql.insert_token(cur, uuid.uuid4(), "enx", claim, NOW - age, NOW)
            publish_sql.remember_certificate(cur, bytes([fill]) * 32, b"keys", NOW - age)
    deleted = service.cleanup(wiring.deps_for(settings), None, NOW)
    assert deleted == {
        "keys": 1,
        "codes": 1,
        "upload_tokens": 1,
        "nonces": 1,
        "registrations": 1,
        "rate_limits": 0,
        "verification_tokens": 1,
        "publish_certificates": 1,
    }
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT key_data FROM exposures")
        assert [bytes(r[0]) for r in cur.fetchall()] == [_key(2).key_data]
        cur.execute("SELECT code_hmac FROM verification_codes")
        assert [bytes(r[0]) for r in cur.fetchall()] == [bytes([2]) * 32]
        cur.execute("SELECT id, nonce FROM registrations ORDER BY nonce")
        remaining = cur.fetchall()
    assert [r[1] for r in remaining] == ["b" * 64, None]
    assert str(idle) not in {str(r[0]) for r in remaining}


def test_cleanup_refuses_a_key_retention_under_ten_days(settings: EnfSettings) -> None:
    short = dataclasses.replace(settings, keys=dataclasses.replace(settings.keys, retention_days=9))
    with pytest.raises(service.RetentionTooShort):
        service.cleanup(wiring.deps_for(short), None, NOW)
