"""Client-side deadlines for PostgreSQL: no wait on the server outlasts its budget.

libpq waits for the server's answer in the kernel, and PostgreSQL's ``statement_timeout``
runs on the server: a server, proxy or network that stops answering (a frozen RDS Proxy, a
failover, a partition) would hold a request past API Gateway's 29 s integration timeout
(issue 20). So every call that waits on the server (``execute``, ``executemany``, COPY,
``commit``, ``rollback``) arms its connection's deadline, and one watchdog thread shuts the
connection's socket down when a deadline passes: the waiting call returns at once with an
``OperationalError`` (the caller's 503), and the connection, now broken, is discarded.

Not psycopg2's wait callback (``set_wait_callback``): it is process-wide, makes every
connection "green", and green connections refuse COPY ("copy_expert cannot be used with an
asynchronous callback"), which the export's page query is.

psycopg2 is imported when the first connection is made, not with this module: the services
without PostgreSQL (details' health check imports db.py) do not ship it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from covidtracer.logs import get_logger

if TYPE_CHECKING:
    from psycopg2.extensions import connection

log = get_logger(__name__)


def connect(dsn: str, wait_seconds: float, **params: Any) -> connection:
    """``psycopg2.connect(dsn, **params)``, each of whose waits on the server ends within
    ``wait_seconds``. Raises what psycopg2.connect raises."""
    import psycopg2

    conn = psycopg2.connect(dsn, connection_factory=_connection_class(), **params)
    watched: Any = conn
    watched.wait_seconds = wait_seconds
    return conn


def expired(conn: connection) -> bool:
    """Whether a wait on ``conn`` passed its deadline (the connection is then broken)."""
    return bool(getattr(conn, "expired", False))


@cache
def _connection_class() -> type[connection]:
    """The connection (and cursor) classes that arm a deadline around every wait."""
    import psycopg2.extensions

    class WatchedCursor(psycopg2.extensions.cursor):
        def execute(self, query: Any, vars: Any = None) -> Any:  # vars: psycopg2's name
            armed = _arm(self.connection)
            try:
                return super().execute(query, vars)
            finally:
                _disarm(self.connection, armed)

        def executemany(self, query: Any, vars_list: Any) -> Any:
            armed = _arm(self.connection)
            try:
                return super().executemany(query, vars_list)
            finally:
                _disarm(self.connection, armed)

        def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> Any:
            armed = _arm(self.connection)
            try:
                return super().copy_expert(sql, file, size)
            finally:
                _disarm(self.connection, armed)

    class WatchedConnection(psycopg2.extensions.connection):
        def __init__(self, dsn: str, *args: Any, **kwargs: Any) -> None:
            super().__init__(dsn, *args, **kwargs)
            self.cursor_factory = WatchedCursor
            self.wait_seconds = 30.0  # ``connect`` sets the caller's
            self.due: float | None = None  # monotonic time the current wait must end by
            self.expired = False  # a wait passed its deadline: the connection is broken
            _watchdog.register(self)

        def commit(self) -> None:
            armed = _arm(self)
            try:
                super().commit()
            finally:
                _disarm(self, armed)

        def rollback(self) -> None:
            armed = _arm(self)
            try:
                super().rollback()
            finally:
                _disarm(self, armed)

    return WatchedConnection


@contextlib.contextmanager
def waiting(conn: connection, seconds: float | None = None) -> Iterator[None]:
    """Arm ``conn``'s deadline for a block of several waits (``seconds``, default its
    ``wait_seconds``): the calls inside run under it, not under deadlines of their own."""
    armed = _arm(conn, seconds)
    try:
        yield
    finally:
        _disarm(conn, armed)


def _arm(conn: Any, seconds: float | None = None) -> bool:
    """Arm ``conn``'s deadline unless one is armed already; whether this call armed it.

    A connection serves one thread at a time (db.py's pool, the export's own connections),
    so a deadline already armed is this thread's own outer one (``waiting``, or a commit
    inside a statement): the call runs under it. Inlined try/finally rather than a context
    manager in the hot path: every statement passes here.
    """
    if conn.due is not None:
        return False
    conn.due = time.monotonic() + (conn.wait_seconds if seconds is None else seconds)
    _watchdog.armed(conn.due)
    return True


def _disarm(conn: Any, armed: bool) -> None:
    if armed:
        _watchdog.disarm(conn)


class _Watchdog:
    """One daemon thread for the process. It sleeps until the earliest deadline it knows of;
    arming a later one (the usual case: every wait has the same budget) costs an uncontended
    lock and no wake-up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._next_check = float("inf")
        self._thread: threading.Thread | None = None

    def register(self, conn: Any) -> None:
        with self._lock:
            self._connections.add(conn)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="db-deadline-watchdog", daemon=True
                )
                self._thread.start()

    def armed(self, due: float) -> None:
        with self._lock:
            if due < self._next_check:
                self._next_check = due
                self._wake.notify()

    def disarm(self, conn: Any) -> None:
        # Under the lock: once this returns, the watchdog cannot shut this connection down,
        # so a connection handed back to the pool is never cut under its next user.
        with self._lock:
            conn.due = None

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                upcoming = float("inf")
                for conn in list(self._connections):
                    due = conn.due
                    if due is None:
                        continue
                    if due <= now:
                        self._expire(conn)
                    else:
                        upcoming = min(upcoming, due)
                self._next_check = upcoming
                self._wake.wait(timeout=None if upcoming == float("inf") else upcoming - now)

    def _expire(self, conn: Any) -> None:
        """Shut ``conn``'s socket down (called with the lock held)."""
        conn.due = None
        conn.expired = True
        try:
            fd = conn.fileno()
        except Exception:  # psycopg2.InterfaceError: closed already, nothing waits on it
            return
        if fd < 0:
            return
        # shutdown() acts on the socket, not on this duplicate descriptor: libpq's blocked
        # read returns at once, and the connection reports itself broken.
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
        log.error("database deadline passed", extra={"dependency": "database"})


_watchdog = _Watchdog()
