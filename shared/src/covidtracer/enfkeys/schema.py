"""The ENF schema: migrations shipped inside the package, run by deploys and ``make migrate``."""

from __future__ import annotations

from pathlib import Path

from covidtracer import db, migrations
from covidtracer.settings import DatabaseSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def migrate(database: DatabaseSettings, target: int | None = None) -> list[str]:
    """Bring the database to ``target`` (default: newest) on a connection of its own."""
    import psycopg2

    conn = psycopg2.connect(db.dsn_for(database), connect_timeout=database.connect_timeout_seconds)
    try:
        return migrations.migrate(conn, MIGRATIONS, target)
    finally:
        conn.close()


def main() -> None:
    """``make migrate``: ``python -m covidtracer.enfkeys.schema [TARGET]`` against DATABASE_URL."""
    import os
    import sys

    import psycopg2

    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL")
    target = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] else None
    conn = psycopg2.connect(url)
    try:
        ran = migrations.migrate(conn, MIGRATIONS, target)
    finally:
        conn.close()
    print(", ".join(ran) if ran else "ENF schema is up to date")


if __name__ == "__main__":
    main()
