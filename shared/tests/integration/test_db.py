"""The PostgreSQL helper against a real server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import psycopg2
import pytest

from covidtracer import db
from covidtracer.errors import Unavailable
from covidtracer.settings import DatabaseSettings
from tracerstack.pytest_plugin import free_port


def _settings(url: str) -> DatabaseSettings:
    return DatabaseSettings(
        url=url,
        host=None,
        name="enf",
        secret_id=None,
        connect_timeout_seconds=2,
        statement_timeout_ms=5_000,
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


def test_no_connection_goes_into_a_snapstart_snapshot(database: DatabaseSettings) -> None:
    from covidtracer import snapstart

    with db.transaction(database) as cur:
        cur.execute("SELECT pg_backend_pid()")
        (snapshotted,) = cur.fetchone()
    snapstart.before_snapshot()
    with db.transaction(database) as cur:  # the first request of a restored environment
        cur.execute("SELECT pg_backend_pid(), (SELECT count(*) FROM pg_stat_activity"
                    " WHERE pid = %s)", (snapshotted,))  # fmt: skip
        restored, still_open = cur.fetchone()
    assert restored != snapshotted and still_open == 0


def test_a_connection_dropped_by_the_server_is_replaced(
    database: DatabaseSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.transaction(database) as cur:
        cur.execute("SELECT pg_backend_pid()")
        old_pid = cur.fetchone()[0]
    admin = psycopg2.connect(database.url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
    admin.close()
    monkeypatch.setattr(db, "IDLE_PROBE_SECONDS", 0.0)  # as after a long idle Lambda freeze
    with db.transaction(database) as cur:
        cur.execute("SELECT pg_backend_pid()")
        assert cur.fetchone()[0] != old_pid


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
