"""ENF key upload through the Lambda handler into PostgreSQL (DESIGN §7).

Targets: >= 1,800 uploads/s of 14 keys on 2 cores, p99 <= 2 ms, with the services' analytics
events on, and >= 0.85x the same run with them off (issue 22) (COVID Green's API in-process
on the same machine, 2 processes: 751 uploads/s, p99 7.3 ms; the ratio is printed).

The bench runs pairs: events on, events off (``ANALYTICS_EVENTS=false``), in alternating order,
and prints each run and the medians of the rates, p99s and on/off ratios of the pairs, with
the load average (the machine is shared: read the ratio, which both runs of a pair share).
With the events on each upload writes its ``keys_uploaded`` line to stdout, as on Lambda;
here each worker's stdout is a pipe that a reader in the parent drains and counts (Lambda's
runtime reads a function's stdout the same way), so the write costs what it costs there.

Each upload is a ``POST /exposures`` API Gateway proxy event handed to the Chalice app the way
Lambda does (``app(event, context)``): bearer check, body parsing, Google's key rules, the
claim of the upload token and the INSERT of 14 keys in one autocommitted statement (one
round trip). Registrations and
upload tokens are made beforehand with SQL (they are not what is measured); secrets come
from a moto server started here and are cached after the first call, as in a warm Lambda.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/enf_upload.py [--uploads 6000] [--workers 2] [--pairs 3] [--profile]

Measured (2026-12-08, quiet machine, load average 1.0-1.3): events on 1,086 uploads/s, p99
3.92 ms; off 1,233/s; on/off 0.89 (pairs 0.87, 0.90, 0.89; target >= 0.85 met); the rate and
p99 targets missed. Where the time goes (``--profile``): ~1.2 ms of an upload waits on its one
statement in PostgreSQL, ~0.8 ms is Python (JWT 0.24, key parsing 0.15, masking 0.06 ms). A
diagnostic run with ``PGOPTIONS="-c synchronous_commit=off"`` (never for the service: an
accepted upload must survive a crash) gave 1,514/s, p99 2.43 ms: the commit's WAL flush on
this machine's disk is ~0.25 ms of it. On AWS, uploads scale out over Lambda environments
and Aurora's commit goes to its storage quorum, so 2 workers on 2 shared cores bound this
figure, not the service.

Measured (2026-12-07, this machine shared with six other engineers' test runs, load average
23-48 as printed, so the absolute rates say nothing; the lead re-runs on a quieter machine):
on/off ratio, per pair, with the events as log lines (issue 22): 0.85, 0.72, 0.96 (load
42-48) and 1.19, 1.07, 0.98 (load 23-34): median of the six 0.97 (target >= 0.85). The same
pairs with the code before issue 22 (a Firehose call per event from a sender thread; run
from a checkout of 1820425 with ANALYTICS_STREAM_NAME unset for "off"): 96/165, 134/243,
158/233 uploads/s: on/off 0.58, 0.55, 0.68, median 0.58 (load 11-22).

Each worker is a process with its own connection (a warm Lambda execution environment).
The headline figure is 2 workers on 2 cores (one warm Lambda per core, each with one
connection); 4 and 8 workers show the curve under more concurrency (Lambda scales out and
PostgreSQL group-commits), at the price of queueing for the 2 cores.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import pstats
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from apigw import proxy_event

from tracerstack.samples import daily_keys

REPO = Path(__file__).resolve().parents[1]
TARGET_RATE = 1800
TARGET_P99_MS = 2.0
TARGET_EVENTS_RATIO = 0.85
PEER_RATE, PEER_P99_MS = 751, 7.3  # COVID Green, issue 12
KEYS_PER_UPLOAD = 14


def _event(token: str, body: dict[str, Any]) -> dict[str, Any]:
    return proxy_event("POST", "/exposures", token, body)


def _prepare(database_url: str, uploads: int, workers: int) -> list[list[dict[str, Any]]]:
    """Registrations, access tokens and upload tokens; returns each worker's events."""
    import psycopg2
    from psycopg2.extras import execute_values

    from covidtracer import aws
    from covidtracer.enfkeys import tokens
    from covidtracer.enfkeys.settings import enf_settings

    settings = enf_settings()
    key = aws.secret_string(settings.tokens.signing_secret_id)
    now = datetime.now(UTC)
    registrations = [uuid.uuid4() for _ in range(100)]
    access = {
        r: tokens.issue(key, r, kind=tokens.ACCESS, now=now, lifetime=timedelta(hours=1))
        for r in registrations
    }
    upload_tokens = [(uuid.uuid4(), registrations[i % 100]) for i in range(uploads)]
    onset = (now - timedelta(days=KEYS_PER_UPLOAD - 1)).date()
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        execute_values(
            cur,
            "INSERT INTO registrations (id, created_at, verified_at, refreshed_at) VALUES %s",
            [(str(r), now, now, now) for r in registrations],
        )
        execute_values(
            cur,
            "INSERT INTO upload_tokens (id, registration_id, symptom_onset, report_type,"
            " created_at, expires_at) VALUES %s",
            [(str(t), str(r), onset, 1, now, now + timedelta(hours=24)) for t, r in upload_tokens],
        )
    events: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
    for index, (token, registration) in enumerate(upload_tokens):
        body = {
            "token": str(token),
            "exposures": daily_keys(KEYS_PER_UPLOAD, now),
            "platform": "test",
            "deviceVerificationPayload": "bench",
        }
        events[index % workers].append(_event(access[registration], body))
    return events


def _worker(
    events: list[dict[str, Any]],
    start_at: float,
    profile: bool,
    out: Any,
    stdout_fd: int,
    expected: int = 204,
) -> None:
    os.dup2(stdout_fd, 1)  # the function's log: a pipe the parent drains
    sys.path.insert(0, str(REPO / "services" / "enf"))
    import logging

    import app as enf

    from covidtracer import aws
    from covidtracer.enfkeys.settings import enf_settings

    logging.getLogger().setLevel(logging.WARNING)  # the access log would measure stdout
    aws.secret_string(enf_settings().tokens.signing_secret_id)  # warm, as a warm Lambda is
    context = SimpleNamespace(aws_request_id="bench", function_name="api_handler")
    warm = events[:20]
    for event in warm:  # warm-up: connection, imports, caches (tokens are used up here)
        enf.app(event, context)
    events = events[20:]
    latencies = []
    profiler = cProfile.Profile() if profile else None
    while time.time() < start_at:
        time.sleep(0.001)
    if profiler:
        profiler.enable()
    began = time.perf_counter()
    for event in events:
        t0 = time.perf_counter()
        response = enf.app(event, context)
        latencies.append(time.perf_counter() - t0)
        if response["statusCode"] != expected:
            raise SystemExit(f"upload failed: {response['statusCode']} {response['body']}")
    elapsed = time.perf_counter() - began
    if profiler:
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)  # stdout is the drained log pipe
        stats.sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(25)
    out.put((latencies, elapsed))


@dataclass(frozen=True)
class Measured:
    uploads: int
    rate: float
    p50_ms: float
    p99_ms: float
    stored: int
    event_lines: int


# (database_url, requests, workers) -> each worker's API Gateway events.
Prepare = Callable[[str, int, int], list[list[dict[str, Any]]]]


@contextmanager
def bench_stack() -> Iterator[str]:
    """A moto server, a migrated database of its own and the ENF settings pointing at both;
    yields the database's URL and removes everything afterwards."""
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        raise SystemExit("set DATABASE_URL (a server the bench may create a database on)")

    import psycopg2
    from moto.server import ThreadedMotoServer

    from covidtracer import aws, migrations, settings
    from covidtracer.enfkeys.schema import MIGRATIONS
    from tracerstack.bootstrap import bootstrap
    from tracerstack.environment import LOCAL_CREDENTIALS, service_environment
    from tracerstack.pytest_plugin import free_port
    from tracerstack.stack import with_database

    os.environ.update(LOCAL_CREDENTIALS)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    name = f"enf_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    database_url = with_database(server_url, name)
    try:
        conn = psycopg2.connect(database_url)
        migrations.migrate(conn, MIGRATIONS)
        conn.close()
        # moto keeps its state per process: each stack makes resources of its own.
        boot = bootstrap(f"http://127.0.0.1:{port}", f"bench{uuid.uuid4().hex[:6]}")
        env = service_environment(
            boot, partners_url="http://127.0.0.1:9", database_url=database_url
        )
        os.environ.update(env)
        settings.reset()
        aws.reset()  # clients and secrets of an earlier stack's moto are gone
        yield database_url
    finally:
        os.environ["DATABASE_URL"] = server_url  # the next stack makes its own database
        moto.stop()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def run_once(
    database_url: str,
    requests: int,
    workers: int,
    *,
    events_on: bool = True,
    profile: bool = False,
    prepare: Prepare = _prepare,
    expected: int = 204,
) -> Measured:
    """One measured run: fresh events from ``prepare``, the workers forked, their results
    merged. Each worker's stdout (the function's log) is a pipe drained and counted here."""
    import psycopg2

    from covidtracer import settings

    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE exposures, upload_tokens, registrations CASCADE")
    os.environ["ANALYTICS_EVENTS"] = "true" if events_on else "false"
    settings.reset()
    per_worker = prepare(database_url, requests + 20 * workers, workers)
    read_end, write_end = os.pipe()
    lines = [0]

    def drain() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                lines[0] += line.startswith(b'{"categories"')

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 3.0
    procs = [
        ctx.Process(
            target=_worker,
            args=(events, start_at, profile and i == 0, out, write_end, expected),
        )
        for i, events in enumerate(per_worker)
    ]
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    os.close(write_end)
    reader.join(10)
    latencies = sorted(x for lat, _ in results for x in lat)
    wall = max(elapsed for _, elapsed in results)
    with psycopg2.connect(database_url) as check, check.cursor() as cur:
        cur.execute("SELECT count(*) FROM exposures")
        stored = cur.fetchone()[0]
    return Measured(
        uploads=len(latencies),
        rate=len(latencies) / wall,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        stored=stored,
        event_lines=lines[0],
    )


def measure(
    uploads: int, workers: int, profile: bool, prepare: Prepare = _prepare, expected: int = 204
) -> Measured:
    """One run (events on) against a stack of its own (``bench/enf_publish.py`` uses it)."""
    with bench_stack() as database_url:
        return run_once(
            database_url, uploads, workers, profile=profile, prepare=prepare, expected=expected
        )


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _line(run: Measured) -> str:
    return (
        f"{run.rate:,.0f} uploads/s, p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms"
        f" ({run.uploads} uploads, {run.stored} keys stored,"
        f" {run.event_lines} event lines in the log); load average {load_average()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3, help="on/off pairs to run")
    parser.add_argument("--profile", action="store_true", help="cProfile the first worker")
    args = parser.parse_args()
    with bench_stack() as database_url:
        pairs = []
        for pair in range(args.pairs):
            order = (True, False) if pair % 2 == 0 else (False, True)
            runs = {
                on: run_once(
                    database_url, args.uploads, args.workers, events_on=on, profile=args.profile
                )
                for on in order
            }
            pairs.append(runs)
            for on in order:
                print(f"  pair {pair + 1}, events {'on ' if on else 'off'}: {_line(runs[on])}")
    ratios = [p[True].rate / p[False].rate for p in pairs]
    rate = statistics.median(p[True].rate for p in pairs)
    off_rate = statistics.median(p[False].rate for p in pairs)
    p99 = statistics.median(p[True].p99_ms for p in pairs)
    ratio = statistics.median(ratios)
    print(
        f"ENF upload ({KEYS_PER_UPLOAD} keys, {args.workers} workers, medians of"
        f" {args.pairs} pairs), events on: {rate:,.0f} uploads/s (target >= {TARGET_RATE:,};"
        f" COVID Green {PEER_RATE}: {rate / PEER_RATE:.1f}x), p99 {p99:.2f} ms (target <="
        f" {TARGET_P99_MS:.0f} ms); events off: {off_rate:,.0f} uploads/s; on/off"
        f" {ratio:.2f} (target >= {TARGET_EVENTS_RATIO}; pairs:"
        f" {', '.join(f'{r:.2f}' for r in ratios)}); load average {load_average()}"
    )


if __name__ == "__main__":
    main()
