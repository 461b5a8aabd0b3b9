"""Numbered up/down SQL migrations for PostgreSQL.

Files live beside the code that uses the schema (``covidtracer/enfkeys/migrations``) so the ENF
Lambda ships them and a deploy can run ``migrate`` through it. Names are
``NNNN_what.up.sql`` and ``NNNN_what.down.sql``. Applied versions are recorded in
``schema_migrations``; a PostgreSQL advisory lock makes concurrent runs (two deploys, a
deploy and a developer) take turns instead of racing. Each file runs in its own transaction.

The migrator's session is one of a kind behind RDS Proxy: its session advisory lock and its
``SET statement_timeout = 0`` (an index build may outlast the database's statement timeout)
pin the connection to one database session ("Avoiding pinning an RDS Proxy", AWS RDS User
Guide), which is what a lock held across transactions needs; the connection is closed when
the run ends. The services never connect this way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg2.extensions import connection

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")
# Any constant shared by every migrating process; "ENFMIGR" in ASCII.
_LOCK_ID = 0x454E464D49475200 >> 8


class MigrationError(RuntimeError):
    """The migrations directory is inconsistent or a migration failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: Path
    down: Path | None


def discover(directory: Path) -> list[Migration]:
    """The migrations in ``directory`` ordered by version; gaps or strays are errors."""
    ups: dict[int, tuple[str, Path]] = {}
    downs: dict[int, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: expected NNNN_name.up.sql or NNNN_name.down.sql")
        version = int(match.group(1))
        if match.group(3) == "up":
            if version in ups:
                raise MigrationError(f"two up migrations have version {version}")
            ups[version] = (match.group(2), path)
        else:
            downs[version] = path
    versions = sorted(ups)
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"versions must run 1..N without gaps, found {versions}")
    if stray := set(downs) - set(ups):
        raise MigrationError(f"down migrations without an up: {sorted(stray)}")
    return [Migration(v, ups[v][0], ups[v][1], downs.get(v)) for v in versions]


def applied(conn: connection) -> list[int]:
    return sorted(_applied_names(conn))


def _applied_names(conn: connection) -> dict[int, str]:
    with conn, conn.cursor() as cur:
        _ensure_table(cur)
        cur.execute("SELECT version, name FROM schema_migrations")
        return {version: name for version, name in cur.fetchall()}


def _check_history(migrations: list[Migration], recorded: dict[int, str]) -> None:
    """Refuse a database another version of the code migrated (a renumbered migration):
    running our files over its schema would fail half-way or, worse, succeed wrongly."""
    names = {migration.version: migration.name for migration in migrations}
    for version, name in sorted(recorded.items()):
        if names.get(version, name) != name:
            raise MigrationError(
                f"the database records migration {version:04d}_{name}, but {version:04d} here is "
                f"{version:04d}_{names[version]}: other code migrated this database. Migrate it "
                "down with that code first, or use a fresh database"
            )


def migrate(conn: connection, directory: Path, target: int | None = None) -> list[str]:
    """Bring the schema to ``target`` (default: the newest); returns what was run, in order."""
    migrations = discover(directory)
    target = len(migrations) if target is None else target
    if not 0 <= target <= len(migrations):
        raise MigrationError(f"target {target} is outside 0..{len(migrations)}")
    done: list[str] = []
    conn.autocommit = False
    with conn, conn.cursor() as cur:
        cur.execute("SET statement_timeout = 0")
        cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
    try:
        recorded = _applied_names(conn)
        _check_history(migrations, recorded)
        current = set(recorded)
        for migration in migrations:
            if migration.version <= target and migration.version not in current:
                _run(
                    conn,
                    migration.up,
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                done.append(f"up {migration.version:04d}_{migration.name}")
        for migration in reversed(migrations):
            if migration.version > target and migration.version in current:
                if migration.down is None:
                    raise MigrationError(f"{migration.version:04d} has no down migration")
                _run(
                    conn,
                    migration.down,
                    "DELETE FROM schema_migrations WHERE version = %s AND name = %s",
                    (migration.version, migration.name),
                )
                done.append(f"down {migration.version:04d}_{migration.name}")
    finally:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return done


def _run(conn: connection, path: Path, record: str, params: tuple[int, str]) -> None:
    try:
        with conn, conn.cursor() as cur:
            cur.execute(path.read_text())
            cur.execute(record, params)
    except Exception as exc:
        raise MigrationError(f"{path.name} failed: {type(exc).__name__}: {exc}") from exc


def _ensure_table(cur: object) -> None:
    cur.execute(  # type: ignore[attr-defined]
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
