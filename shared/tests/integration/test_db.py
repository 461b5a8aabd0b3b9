"""The PostgreSQL helper against a real server, reached through the RDS Proxy stand-in
(``tracerstack.pooler``: PgBouncer refusing startup options, pooling transactions), and
what it does when that database stops answering (issue 20: a 503 within the deadline)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import psycopg2
import pytest

from covidtracer import db
from covidtracer.errors import Unavailable
from covidtracer.settings import DatabaseSettings
from tracerstack.pooler import Pooler
from tracerstack.pytest_plugin import FreezablePooler, SchemaUrls, free_port, within


def _settings(url: str, query_timeout_ms: int = 5_000) -> DatabaseSettings:
    return DatabaseSettings(
        url=url,
        host=None,
        name="enf",
        secret_id=None,
        connect_timeout_seconds=2,
        query_timeout_ms=query_timeout_ms,
    )


@pytest.fixture
def database(pg_schema: str) -> Iterator[DatabaseSettings]:
    settings = _settings(pg_schema)
    with db.transaction(settings) as cur:
        cur.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
    yield settings
    db.close()


def _count(settings: DatabaseSettings) -> int:
    with db.transaction(settings) as cur:
        cur.execute("SELECT count(*) FROM notes")
        return int(cur.fetchone()[0])


def test_a_transaction_commits_on_success(database: DatabaseSettings) -> None:
    with db.transaction(database) as cur:
        cur.execute("INSERT INTO notes (body) VALUES ('a'), ('b')")
    assert _count(database) == 2


def test_a_transaction_rolls_back_everything_on_error(database: DatabaseSettings) -> None:
    def insert_two_rows_the_second_invalid() -> None:
        with db.transaction(database) as cur:
            cur.execute("INSERT INTO notes (body) VALUES ('kept?')")
            cur.execute("INSERT INTO notes (body) VALUES (NULL)")

    with pytest.raises(psycopg2.errors.NotNullViolation):
        insert_two_rows_the_second_invalid()
    assert _count(database) == 0


def test_the_connection_is_reused_across_invocations(database: DatabaseSettings) -> None:
    pids = set()
    for _ in range(3):
        with db.transaction(database) as cur:
            cur.execute("SELECT pg_backend_pid()")
            pids.add(cur.fetchone()[0])
    assert len(pids) == 1


def test_no_connection_goes_into_a_snapstart_snapshot(pg_schema_direct: str) -> None:
    """On the server itself: behind a transaction pooler the backend is the pooler's, which
    may serve a new client connection from the same server connection."""
    from covidtracer import snapstart

    database = _settings(pg_schema_direct)
    with db.transaction(database) as cur:
        cur.execute("SELECT pg_backend_pid()")
        (snapshotted,) = cur.fetchone()
    snapstart.before_snapshot()
    with db.transaction(database) as cur:  # the first request of a restored environment
        cur.execute("SELECT pg_backend_pid(), (SELECT count(*) FROM pg_stat_activity"
                    " WHERE pid = %s)", (snapshotted,))  # fmt: skip
        restored, still_open = cur.fetchone()
    db.close()
    assert restored != snapshotted and still_open == 0


def test_a_connection_dropped_by_the_server_is_replaced(
    pg_schema_direct: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On the server itself: behind a transaction pooler, the server's end of a connection is
    # the pooler's, and the next test covers the pooler dropping ours.
    database = _settings(pg_schema_direct)
    with db.transaction(database) as cur:
        cur.execute("SELECT pg_backend_pid()")
        old_pid = cur.fetchone()[0]
    admin = psycopg2.connect(pg_schema_direct)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
    admin.close()
    monkeypatch.setattr(db, "IDLE_PROBE_SECONDS", 0.0)  # as after a long idle Lambda freeze
    try:
        with db.transaction(database) as cur:
            cur.execute("SELECT pg_backend_pid()")
            assert cur.fetchone()[0] != old_pid
    finally:
        db.close()


def test_a_connection_dropped_by_the_proxy_is_replaced(
    database: DatabaseSettings,
    pooler: Pooler,
    schema_urls: SchemaUrls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RDS Proxy drops a client idle longer than IdleClientTimeout, and any during a
    failover: the pooled connection is found dead on its probe and replaced."""
    with db.transaction(database) as cur:
        cur.execute("SELECT 1")
    pooler.drop_clients(schema_urls.schema)
    monkeypatch.setattr(db, "IDLE_PROBE_SECONDS", 0.0)  # as after a long idle Lambda freeze
    with db.transaction(database) as cur:
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)


def test_an_unreachable_server_is_unavailable_not_a_crash() -> None:
    settings = _settings(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(Unavailable) as caught:
        db.connection_for(settings)
    assert caught.value.status == 503


def _all_at_once(workers: int, work: Callable[[int], None]) -> None:
    """``work(0)`` … ``work(workers - 1)`` on threads of their own, released together."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    barrier = threading.Barrier(workers)

    def released(index: int) -> None:
        barrier.wait(timeout=30)
        work(index)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(released, range(workers)))


def _bodies(database: DatabaseSettings) -> set[str]:
    with db.transaction(database) as cur:
        cur.execute("SELECT body FROM notes")
        return {row[0] for row in cur.fetchall()}


def _insert_then_roll_back(database: DatabaseSettings, body: str) -> None:
    with contextlib.suppress(ValueError), db.transaction(database) as cur:
        cur.execute("INSERT INTO notes (body) VALUES (%s)", (body,))
        cur.execute("SELECT pg_sleep(0.002)")
        raise ValueError("refused after writing: must roll back")


def test_concurrent_transactions_each_get_a_connection_of_their_own(
    database: DatabaseSettings,
) -> None:
    """Threads committing and rolling back at the same time: every commit is kept, every
    rollback leaves nothing: no two blocks in flight share a connection (issue 11, 1)."""

    def work(index: int) -> None:
        for round_ in range(10):
            if index % 2:
                _insert_then_roll_back(database, f"{index}-{round_}")
            else:
                with db.transaction(database) as cur:
                    cur.execute("INSERT INTO notes (body) VALUES (%s)", (f"{index}-{round_}",))
                    cur.execute("SELECT pg_sleep(0.002)")

    _all_at_once(16, work)
    assert _bodies(database) == {f"{i}-{r}" for i in range(0, 16, 2) for r in range(10)}


def test_autocommit_and_transactions_in_flight_do_not_switch_each_other(
    database: DatabaseSettings,
) -> None:
    def work(index: int) -> None:
        for round_ in range(10):
            if index % 2:
                with db.autocommit(database) as cur:
                    cur.execute("INSERT INTO notes (body) VALUES (%s)", (f"a{index}-{round_}",))
            else:
                _insert_then_roll_back(database, f"t{index}-{round_}")

    _all_at_once(12, work)
    assert _bodies(database) == {f"a{i}-{r}" for i in range(1, 12, 2) for r in range(10)}


# ---------------------------------------------------------------------------- RDS Proxy


def test_connections_through_a_pooler_that_refuses_startup_options_are_accepted(
    pg_schema: str, pg_schema_direct: str
) -> None:
    """RDS Proxy refuses a connection that carries startup options ("Feature not supported:
    RDS Proxy currently doesn't support command-line options"); so does its stand-in, and
    db.py's connections are accepted by it, with the database's own statement timeout in
    force (migration 0005) instead of one sent at start-up (issue 18, item 6)."""
    from covidtracer import migrations
    from covidtracer.enfkeys.schema import MIGRATIONS

    with pytest.raises(psycopg2.OperationalError, match="unsupported startup parameter"):
        psycopg2.connect(pg_schema, options="-c statement_timeout=1000").close()
    migrator = psycopg2.connect(pg_schema_direct)
    migrations.migrate(migrator, MIGRATIONS)
    migrator.close()
    settings = _settings(pg_schema)
    try:
        with db.transaction(settings) as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone() == ("10s",)
        assert db.ping(settings) == {"status": "ok"}
    finally:
        db.close()


# ---------------------------------------------------------------------------- deadlines

QUERY_DEADLINE_MS = 1_000
# A frozen database is a 503 within the deadline it hit, plus what a loaded test machine
# adds; without client-side deadlines the call never returns.
ANSWER_WITHIN_SECONDS = 8.0
HANG_LIMIT_SECONDS = 20.0


@pytest.fixture
def frozen(freezable_pooler: FreezablePooler) -> Iterator[tuple[FreezablePooler, DatabaseSettings]]:
    """db.py pointed at a pooler of the test's own, one connection already pooled; the test
    freezes the pooler when it likes. Thawed and the pool emptied afterwards."""
    settings = _settings(freezable_pooler.url, QUERY_DEADLINE_MS)
    with db.transaction(settings) as cur:
        cur.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
    yield freezable_pooler, settings
    freezable_pooler.pooler.thaw()
    db.close()


def _insert(settings: DatabaseSettings) -> None:
    with db.transaction(settings) as cur:
        cur.execute("INSERT INTO notes (body) VALUES ('while frozen')")


def test_a_pooled_connection_to_a_frozen_database_is_unavailable_within_the_query_deadline(
    frozen: tuple[FreezablePooler, DatabaseSettings],
) -> None:
    proxy, settings = frozen
    proxy.pooler.freeze()
    timed = within(HANG_LIMIT_SECONDS, lambda: _insert(settings), proxy.pooler.thaw)
    assert isinstance(timed.error, Unavailable), timed.error
    assert QUERY_DEADLINE_MS / 1000 <= timed.seconds < ANSWER_WITHIN_SECONDS
    # The broken connection was not pooled: the next request connects afresh, and the
    # frozen server fails that within the connect timeout.
    timed = within(HANG_LIMIT_SECONDS, lambda: db.ping(settings), proxy.pooler.thaw)
    assert isinstance(timed.error, Unavailable), timed.error
    assert timed.seconds < ANSWER_WITHIN_SECONDS
    proxy.pooler.thaw()
    _insert(settings)  # back: nothing else to do
    with db.transaction(settings) as cur:
        cur.execute("SELECT body FROM notes")
        assert cur.fetchall() == [("while frozen",)]  # the frozen attempt left nothing


def test_a_stale_pooled_connection_is_probed_within_a_short_deadline_then_replaced(
    frozen: tuple[FreezablePooler, DatabaseSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, settings = frozen
    monkeypatch.setattr(db, "IDLE_PROBE_SECONDS", 0.0)  # as after a long idle Lambda freeze
    proxy.pooler.freeze()
    timed = within(HANG_LIMIT_SECONDS, lambda: db.ping(settings), proxy.pooler.thaw)
    assert isinstance(timed.error, Unavailable), timed.error
    # The probe's deadline, then a connection attempt's: never the probe's own hang.
    assert timed.seconds < ANSWER_WITHIN_SECONDS
    proxy.pooler.thaw()
    assert db.ping(settings) == {"status": "ok"}


def test_a_connection_handed_back_is_never_cut_by_a_deadline_armed_for_its_last_user(
    frozen: tuple[FreezablePooler, DatabaseSettings],
) -> None:
    """The watchdog acts only on a wait in progress: once a wait ended, its deadline passing
    does nothing to the pooled connection."""
    import time

    _, settings = frozen
    _insert(settings)
    time.sleep(QUERY_DEADLINE_MS / 1000 + 0.5)
    with db.transaction(settings) as cur:
        cur.execute("SELECT count(*) FROM notes")
        assert cur.fetchone() == (1,)
