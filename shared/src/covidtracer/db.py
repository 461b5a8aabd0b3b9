"""PostgreSQL access: a small pool of connections and one ``transaction()`` helper.

A connection serves one request at a time: ``transaction()`` and ``autocommit()`` take one
from the pool for the block and give it back after, so requests served concurrently by a
threaded host (``chalice local``, a test server) never share a connection, a transaction or
an autocommit switch (DESIGN §8). A Lambda serves one request at a time, so its pool holds
one connection, reused across warm invocations (through RDS Proxy in AWS), probed after a
long idle and reopened transparently when the proxy or server dropped it. Driver errors
that mean "the database is not there" become ``Unavailable`` (503).

Deadlines (issue 20): connecting gives up after ``DATABASE_CONNECT_TIMEOUT``, and every wait
on the server (each statement, COPY, commit, rollback) after ``DATABASE_QUERY_TIMEOUT_MS``,
measured on the client (``dbwatch``), so a database, proxy or network that stops answering
is a 503 well inside API Gateway's 29 s, never a hung request. The server-side
``statement_timeout`` is a setting of the database itself (migration 0005), not a startup
option: RDS Proxy refuses connections that carry one ("Feature not supported: RDS Proxy
currently doesn't support command-line options"), and a ``SET`` from the client would pin
the connection to one database session ("Avoiding pinning an RDS Proxy", AWS RDS User
Guide). Nothing here sets session state.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from covidtracer import aws
from covidtracer.errors import Unavailable
from covidtracer.logs import get_logger
from covidtracer.settings import DatabaseSettings

if TYPE_CHECKING:
    from psycopg2.extensions import connection, cursor

log = get_logger(__name__)

# RDS Proxy and servers close idle client connections; after this long idle the connection
# is probed before use, so a frozen-then-thawed Lambda reconnects instead of failing once.
IDLE_PROBE_SECONDS = 60.0
# How long the probe may wait: a stale connection costs at most this before a new one.
PROBE_DEADLINE_SECONDS = 2.0
# Idle connections kept for reuse. A Lambda needs one; a threaded local server serving a
# burst opens what the burst needs and keeps this many afterwards.
MAX_IDLE = 8


@dataclass
class _Pooled:
    conn: connection
    dsn: str
    last_used: float


_idle: list[_Pooled] = []
_lock = threading.Lock()


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
    """A new connection whose waits end by the query deadline. Only the parameters RDS Proxy
    accepts at start-up go with it (no ``options``: see the module doc)."""
    import psycopg2

    from covidtracer import dbwatch

    try:
        return dbwatch.connect(
            dsn,
            database.query_timeout_ms / 1000,
            connect_timeout=database.connect_timeout_seconds,
            application_name="covidtracer",
        )
    except psycopg2.OperationalError as exc:
        log.error("database connection failed", extra={"error_type": type(exc).__name__})
        raise Unavailable("database") from exc


def _checkout(database: DatabaseSettings) -> _Pooled:
    """A connection for the caller alone: an idle one of the pool, or a new one."""
    dsn = dsn_for(database)
    now = time.monotonic()
    while True:
        with _lock:
            found = next((p for p in reversed(_idle) if p.dsn == dsn), None)
            if found is not None:
                _idle.remove(found)
        if found is None:
            return _Pooled(_connect(dsn, database), dsn, now)
        if found.conn.closed:
            continue
        probe = min(PROBE_DEADLINE_SECONDS, database.query_timeout_ms / 1000)
        if now - found.last_used > IDLE_PROBE_SECONDS and not _alive(found.conn, probe):
            _discard(found.conn)
            continue
        return found


def _checkin(pooled: _Pooled, broken: bool) -> None:
    """Back to the pool, unless the connection is broken, mid-transaction or surplus."""
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE

    from covidtracer import dbwatch

    conn = pooled.conn
    if (
        broken
        or conn.closed
        or dbwatch.expired(conn)
        or conn.info.transaction_status != TRANSACTION_STATUS_IDLE
    ):
        _discard(conn)
        return
    pooled.last_used = time.monotonic()
    with _lock:
        if len(_idle) < MAX_IDLE:
            _idle.append(pooled)
            return
    _discard(conn)


def _discard(conn: connection) -> None:
    import psycopg2

    try:
        if not conn.closed:
            conn.close()
    except psycopg2.Error:
        pass  # already unusable: nothing to tidy


def connection_for(database: DatabaseSettings) -> connection:
    """A new connection of the caller's own (closed by the caller), outside the pool, with
    the same deadlines; raises ``Unavailable``."""
    return _connect(dsn_for(database), database)


@contextmanager
def own_connection(database: DatabaseSettings) -> Iterator[connection]:
    """``connection_for`` for a block, closed after it: for a job that must not share the
    pool (the export's run and its reader thread). Raises ``Unavailable`` as it does."""
    conn = connection_for(database)
    try:
        yield conn
    finally:
        _discard(conn)


def _alive(conn: connection, deadline_seconds: float) -> bool:
    import psycopg2

    from covidtracer import dbwatch

    try:
        with dbwatch.waiting(conn, deadline_seconds):
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            conn.rollback()
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        return False
    return not dbwatch.expired(conn)


@contextmanager
def _borrowed(database: DatabaseSettings) -> Iterator[connection]:
    """A pooled connection for one block, returned to the pool after it — or discarded when
    the block failed in a way that may have left it unusable. Raises ``Unavailable`` as
    ``transaction()`` does."""
    pooled = _checkout(database)
    broken = True
    try:
        with _unavailable_when_gone():
            yield pooled.conn
        broken = False
    except BaseException as error:
        broken = _is_driver_failure(error)
        raise
    finally:
        _checkin(pooled, broken)


@contextmanager
def transaction(database: DatabaseSettings) -> Iterator[cursor]:
    """Run a block in one transaction on a connection of its own.

    Raises ``Unavailable`` when the server cannot be reached or drops the connection; the
    transaction is rolled back, so nothing is half-done. Other database errors (constraint
    violations …) propagate for the caller's adapter to translate.
    """
    with _borrowed(database) as pooled, pooled as conn, conn.cursor() as cur:
        yield cur


@contextmanager
def autocommit(database: DatabaseSettings) -> Iterator[cursor]:
    """Run statements each in its own implicit transaction: one round trip per statement
    instead of ``BEGIN``, statement, ``COMMIT`` (three). For a hot path whose work fits in
    ONE statement, which PostgreSQL makes atomic by itself (a data-modifying CTE, say); use
    ``transaction()`` when two statements must commit together. Errors as ``transaction()``.
    """
    with _borrowed(database) as conn:
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            if not conn.closed:
                conn.autocommit = False


# ``unmask_keys`` refused keys masked with a secret its database no longer has
# (``enfkeys.keymask``): the connection's cached secret is stale, so it is not reused.
STALE_KEY_MASK = "CTKM1"


def _is_driver_failure(error: BaseException) -> bool:
    """Whether the connection may be unusable after ``error`` (then it is not reused)."""
    import psycopg2

    if isinstance(error, psycopg2.Error) and error.pgcode == STALE_KEY_MASK:
        return True
    return isinstance(error, Unavailable | psycopg2.OperationalError | psycopg2.InterfaceError)


@contextmanager
def _unavailable_when_gone() -> Iterator[None]:
    import psycopg2

    try:
        yield
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        # A dropped connection (proxy idle timeout, failover) is not reused: the next
        # request connects afresh.
        log.error("database unavailable", extra={"error_type": type(exc).__name__})
        raise Unavailable("database") from exc


def ping(database: DatabaseSettings) -> dict[str, Any]:
    """A health check: the server answers a trivial query."""
    with transaction(database) as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return {"status": "ok"}


def close() -> None:
    """Close every idle connection (tests point the pool at a fresh database; SnapStart
    before the snapshot, since a socket and its login belong to one environment)."""
    with _lock:
        idle = list(_idle)
        _idle.clear()
    for pooled in idle:
        _discard(pooled.conn)
