"""PgBouncer in front of PostgreSQL: the local stand-in for RDS Proxy (DESIGN §8).

The services reach Aurora through RDS Proxy in AWS, so the local stack and the tests reach
PostgreSQL through a pooler that refuses what RDS Proxy refuses and multiplexes as it does:

- a startup parameter it does not know (``options=-c …``, ``default_transaction_read_only``)
  refuses the connection, as RDS Proxy does ("Feature not supported: RDS Proxy currently
  doesn't support command-line options");
- transaction pooling: a client's transactions may each run on another server connection,
  which is what RDS Proxy does for a session it has not pinned (AWS, "Avoiding pinning an
  RDS Proxy": "RDS Proxy can reuse a connection at the conclusion of each transaction"). Code
  that leaned on session state (a ``SET``, an advisory lock across transactions) breaks here
  instead of silently pinning in AWS, so the services must not need it; migrations, which
  take a session lock on purpose, connect directly (``direct`` URLs).

PgBouncer comes from Debian's package, unpacked into the virtualenv by ``make install``
(``infra/local/bin/install-pgbouncer``); ``PGBOUNCER`` or one on ``PATH`` also does.
``Pooler.freeze()`` stops the process (SIGSTOP) to play a database that no longer answers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from tracerstack import REPO_ROOT, free_port

INSTALLED = REPO_ROOT / ".venv" / "pgbouncer"
# What RDS Proxy's target group allows (infra/templates/database.yaml): a client waits this
# long for a server connection (ConnectionBorrowTimeout), an idle client is dropped after
# IdleClientTimeout.
QUERY_WAIT_SECONDS = 30
IDLE_CLIENT_SECONDS = 1800


class PoolerError(RuntimeError):
    pass


def binary() -> Path:
    """PgBouncer's executable: ``PGBOUNCER``, the one ``make install`` unpacked, or PATH's."""
    for candidate in (os.environ.get("PGBOUNCER"), INSTALLED / "usr" / "sbin" / "pgbouncer"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which("pgbouncer")
    if found is None:
        raise PoolerError("PgBouncer is not installed: run `make install`")
    return Path(found)


def _library_path(executable: Path) -> str:
    """The unpacked package's own libraries (c-ares) ahead of the system's."""
    root = executable.parents[2]
    libs = sorted({str(p.parent) for p in root.glob("usr/lib/*/libcares.so*")})
    return os.pathsep.join([*libs, os.environ.get("LD_LIBRARY_PATH", "")]).strip(os.pathsep)


@dataclass(frozen=True)
class Server:
    """Where PostgreSQL listens and as whom to log in, read from its URL."""

    host: str  # a name, an address, or a unix-socket directory
    port: int
    user: str

    @classmethod
    def from_url(cls, url: str) -> Server:
        parts = urlsplit(url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        return cls(
            host=socket_dir or parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
        )


@dataclass
class Pooler:
    """A running PgBouncer (see the module doc). ``url(database)`` is what services use."""

    server: Server
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    owns_directory: bool = False  # a temporary one, removed by ``stop``
    # Databases added with ``add``: name -> (server database, search_path).
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.directory / "pgbouncer.ini"

    def url(self, database: str) -> str:
        return f"postgresql://{self.server.user}@127.0.0.1:{self.port}/{database}"

    def write_config(self) -> None:
        """PgBouncer's settings: every database of the server, plus the aliases."""
        server = f"host={self.server.host} port={self.server.port}"
        databases = [f"* = {server}"]
        for alias, (database, search_path) in sorted(self.aliases.items()):
            # A schema of its own for a test, as a database of its own would be: the search
            # path is set when PgBouncer opens each server connection, never by the client.
            query = f"SET search_path = {search_path}"
            databases.append(f"{alias} = {server} dbname={database} connect_query='{query}'")
        lines = [
            "[databases]",
            *databases,
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {self.directory / 'users.txt'}",
            f"admin_users = {self.server.user}",
            "pool_mode = transaction",
            "max_client_conn = 1000",
            "default_pool_size = 40",
            f"query_wait_timeout = {QUERY_WAIT_SECONDS}",
            f"client_idle_timeout = {IDLE_CLIENT_SECONDS}",
            # No ignore_startup_parameters: PgBouncer then "allows only parameters it can
            # keep track of in startup packets" (client_encoding, datestyle, timezone,
            # standard_conforming_strings, application_name) and refuses a connection
            # carrying any other, as RDS Proxy refuses command-line options.
            "log_connections = 0",
            "log_disconnections = 0",
        ]
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "users.txt").write_text(f'"{self.server.user}" ""\n')
        self.config.write_text("\n".join(lines) + "\n")
        # Started by root, PgBouncer runs as another user (``_run_as``): it must read these.
        self.directory.chmod(0o755)
        for path in (self.config, self.directory / "users.txt"):
            path.chmod(0o644)

    def command(self) -> list[str]:
        executable = binary()
        user = ["-u", self._run_as()] if os.geteuid() == 0 else []
        return [str(executable), *user, str(self.config)]

    def _run_as(self) -> str:
        """PgBouncer refuses to run as root: the owner of the server's socket directory (an
        embedded server's, which only it may enter), else nobody."""
        import pwd

        if self.server.host.startswith("/"):
            owner = pwd.getpwuid(Path(self.server.host).stat().st_uid).pw_name
            if owner != "root":
                return owner
        return "nobody"

    def environment(self) -> dict[str, str]:
        return {"LD_LIBRARY_PATH": _library_path(binary())}

    def start(self, log_path: Path | None = None) -> None:
        """Start PgBouncer and wait until it accepts connections."""
        self.write_config()
        output = (log_path or self.directory / "pgbouncer.log").open("ab")
        with output:
            self.process = subprocess.Popen(
                self.command(),
                env={**os.environ, **self.environment()},
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.wait_ready(self.process)

    def wait_ready(
        self, process: subprocess.Popen[bytes] | None = None, timeout: float = 20
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            if process is not None and process.poll() is not None:
                raise PoolerError(f"PgBouncer exited at start-up; see {self.directory}")
            if time.monotonic() > deadline:
                raise PoolerError(f"PgBouncer did not listen on {self.port} in {timeout:.0f} s")
            time.sleep(0.05)

    def add(self, alias: str, database: str, search_path: str) -> str:
        """A database name whose connections see ``search_path`` of ``database``; its URL."""
        self.aliases[alias] = (database, search_path)
        self.reload()
        return self.url(alias)

    def remove(self, alias: str) -> None:
        if self.aliases.pop(alias, None) is not None:
            self.reload()

    def reload(self) -> None:
        """Re-read the settings (``RELOAD``, which answers once the new ones are in force)."""
        self.write_config()
        self._admin("RELOAD")

    def drop_clients(self, database: str) -> None:
        """Close every client connection to ``database``, as RDS Proxy does to an idle client
        (IdleClientTimeout) or during a failover; new ones are accepted again at once."""
        self._admin(f"KILL {database}", f"RESUME {database}")

    def _admin(self, *commands: str) -> None:
        """Commands on PgBouncer's admin console."""
        import psycopg2

        admin = psycopg2.connect(self.url("pgbouncer"), connect_timeout=5)
        try:
            admin.autocommit = True
            with admin.cursor() as cur:
                for command in commands:
                    cur.execute(command)
        finally:
            admin.close()

    def freeze(self) -> None:
        """The database stops answering: connections stay open, nothing is read or sent."""
        os.kill(self._pid(), signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self._pid(), signal.SIGCONT)

    def _pid(self) -> int:
        if self.process is None:
            raise PoolerError("this pooler was not started here")
        return self.process.pid

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.thaw()  # a stopped process cannot act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        if self.owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def start(server_url: str, directory: Path | None = None) -> Pooler:
    """A PgBouncer in front of ``server_url``'s server on a free loopback port, its files in
    ``directory`` (default: a temporary one; PgBouncer, running as another user when started
    by root, must be able to read it, so never one inside a private folder)."""
    folder = directory or Path(tempfile.mkdtemp(prefix="covidtracer-pgbouncer-"))
    pooler = Pooler(Server.from_url(server_url), free_port(), folder, owns_directory=not directory)
    pooler.start()
    return pooler


def direct_url(server_url: str, database: str, search_path: str | None = None) -> str:
    """``server_url`` naming ``database`` (and a search path): a connection that skips the
    pooler, for migrations and test set-up."""
    parts = urlsplit(server_url)
    query = parts.query
    if search_path:
        query = f"{query}&" if query else ""
        query += f"options=-csearch_path%3D{search_path}"
    return urlunsplit(parts._replace(path=f"/{database}", query=query))
