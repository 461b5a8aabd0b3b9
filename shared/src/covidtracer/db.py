"""PostgreSQL access: one connection per execution environment and one ``transaction()``.

A Lambda reuses its connection across warm invocations (through RDS Proxy in AWS), so the
connection is module state, reopened transparently when the proxy or server dropped it.
Every query runs inside ``transaction()``: commit on success, rollback on any error, and
driver errors that mean "the database is not there" become ``Unavailable`` (503).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from covidtracer import aws
from covidtracer.errors import Unavailable
from covidtracer.logs import get_logger
from covidtracer.settings import DatabaseSettings

if TYPE_CHECKING:
    from psycopg2.extensions import connection, cursor

log = get_logger(__name__)

_connection: connection | None = None
_connection_dsn: str | None = None
_last_used = 0.0

# RDS Proxy and servers close idle client connections; after this long idle the connection
# is probed before use, so a frozen-then-thawed Lambda reconnects instead of failing once.
IDLE_PROBE_SECONDS = 60.0


def dsn_for(database: DatabaseSettings) -> str:
    """The connection string: ``DATABASE_URL`` as given, or RDS Proxy with the secret's login."""
    if database.url:
        return database.url
    if not (database.host and database.secret_id):
        raise ValueError("DATABASE_URL, or DATABASE_HOST and DATABASE_SECRET_ID, must be set")
    login = json.loads(aws.secret_string(database.secret_id))
    user, password = quote(login["username"], safe=""), quote(login["password"], safe="")
    return f"postgresql://{user}:{password}@{database.host}:5432/{database.name}?sslmode=require"


def _connect(dsn: str, database: DatabaseSettings) -> connection:
    import psycopg2
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(dsn)
    # Keep options the URL already carries (a search_path, say) and add the timeout.
    options = f"{params.pop('options', '')} -c statement_timeout={database.statement_timeout_ms}"
    params.setdefault("application_name", "covidtracer")
    try:
        conn: connection = psycopg2.connect(
            connect_timeout=database.connect_timeout_seconds, options=options.strip(), **params
        )
    except psycopg2.OperationalError as exc:
        log.error("database connection failed", extra={"error_type": type(exc).__name__})
        raise Unavailable("database") from exc
    return conn


def connection_for(database: DatabaseSettings) -> connection:
    """The execution environment's connection, opened or reopened as needed."""
    global _connection, _connection_dsn, _last_used
    dsn = dsn_for(database)
    now = time.monotonic()
    if (
        _connection is not None
        and now - _last_used > IDLE_PROBE_SECONDS
        and not _alive(_connection)
    ):
        close()
    if _connection is None or _connection.closed or _connection_dsn != dsn:
        close()
        _connection, _connection_dsn = _connect(dsn, database), dsn
    _last_used = now
    return _connection


def _alive(conn: connection) -> bool:
    import psycopg2

    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.rollback()
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        return False
    return True


@contextmanager
def transaction(database: DatabaseSettings) -> Iterator[cursor]:
    """Run a block in one transaction on the shared connection.

    Raises ``Unavailable`` when the server cannot be reached or drops the connection; the
    transaction is rolled back, so nothing is half-done. Other database errors (constraint
    violations …) propagate for the caller's adapter to translate.
    """
    conn = connection_for(database)
    with _unavailable_when_gone(), conn, conn.cursor() as cur:
        yield cur


@contextmanager
def autocommit(database: DatabaseSettings) -> Iterator[cursor]:
    """Run statements each in its own implicit transaction: one round trip per statement
    instead of ``BEGIN``, statement, ``COMMIT`` (three). For a hot path whose work fits in
    ONE statement, which PostgreSQL makes atomic by itself (a data-modifying CTE, say); use
    ``transaction()`` when two statements must commit together. Errors as ``transaction()``.
    """
    conn = connection_for(database)
    with _unavailable_when_gone():
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            if not conn.closed:
                conn.autocommit = False


@contextmanager
def _unavailable_when_gone() -> Iterator[None]:
    import psycopg2

    try:
        yield
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        # A dropped connection (proxy idle timeout, failover) is not reused: the next
        # invocation reconnects.
        close()
        log.error("database unavailable", extra={"error_type": type(exc).__name__})
        raise Unavailable("database") from exc


def ping(database: DatabaseSettings) -> dict[str, Any]:
    """A health check: the server answers a trivial query."""
    with transaction(database) as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return {"status": "ok"}


def close() -> None:
    global _connection, _connection_dsn
    if _connection is not None and not _connection.closed:
        _connection.close()
    _connection, _connection_dsn = None, None
