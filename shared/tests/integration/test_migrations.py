"""Migrations up and down on a real server, and two migrators at once (on the server itself:
the migrator holds a session lock, which no transaction pooler can hold for it)."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg2
import pytest

from covidtracer.migrations import MigrationError, applied, migrate


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    (tmp_path / "0001_things.up.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "0001_things.down.sql").write_text("DROP TABLE things;")
    (tmp_path / "0002_more.up.sql").write_text("ALTER TABLE things ADD COLUMN label text;")
    (tmp_path / "0002_more.down.sql").write_text("ALTER TABLE things DROP COLUMN label;")
    return tmp_path


def _columns(dsn: str) -> list[str]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'things' AND table_schema = current_schema() "
            "ORDER BY ordinal_position"
        )
        return [row[0] for row in cur.fetchall()]


def test_migrate_applies_each_version_once_and_can_go_back(
    pg_schema_direct: str, directory: Path
) -> None:
    conn = psycopg2.connect(pg_schema_direct)
    assert migrate(conn, directory) == ["up 0001_things", "up 0002_more"]
    assert migrate(conn, directory) == []
    assert _columns(pg_schema_direct) == ["id", "label"]
    assert migrate(conn, directory, target=1) == ["down 0002_more"]
    assert _columns(pg_schema_direct) == ["id"]
    assert applied(conn) == [1]
    conn.close()


def test_a_failing_migration_leaves_no_trace_of_itself(
    pg_schema_direct: str, directory: Path
) -> None:
    (directory / "0003_broken.up.sql").write_text("CREATE TABLE ok (id int); SELECT nonsense();")
    conn = psycopg2.connect(pg_schema_direct)
    with pytest.raises(MigrationError, match=r"0003_broken\.up\.sql failed"):
        migrate(conn, directory)
    assert applied(conn) == [1, 2]
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('ok')")
        assert cur.fetchone()[0] is None
    conn.close()


def test_a_database_another_numbering_migrated_is_refused_untouched(
    pg_schema_direct: str, directory: Path
) -> None:
    conn = psycopg2.connect(pg_schema_direct)
    migrate(conn, directory)
    # Another branch's code numbered its own 0002 differently and got there first.
    (directory / "0002_more.up.sql").rename(directory / "0002_renamed.up.sql")
    (directory / "0002_more.down.sql").rename(directory / "0002_renamed.down.sql")
    (directory / "0003_after.up.sql").write_text("CREATE TABLE after_things (id int);")
    with pytest.raises(MigrationError, match=r"records migration 0002_more, but 0002 here is"):
        migrate(conn, directory)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('after_things')")
        assert cur.fetchone()[0] is None
    assert applied(conn) == [1, 2]
    conn.close()


def test_concurrent_migrators_take_turns(pg_schema_direct: str, directory: Path) -> None:
    results: list[list[str]] = []

    def run() -> None:
        conn = psycopg2.connect(pg_schema_direct)
        results.append(migrate(conn, directory))
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, 0, 0, 2]
