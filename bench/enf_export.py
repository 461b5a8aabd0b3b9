"""Benchmark: one ENF export run, 1.4 M keys in PostgreSQL -> signed zips in (moto) S3.

Targets (DESIGN §7, issue 12), on this 2-core machine, printed beside COVID Green's figures
here (export Lambda against the same PostgreSQL: 20.6 s / 452 MiB spread, 40.6 s / 2.3 GiB
one day) and beside the machine's limit measured in the same run (the same PostgreSQL reads
alone, one after another, with nothing else to do):
- ``spread``: 1.4 M keys over the last 14 days (14 dailies + today's delta): <= 2.0 s,
  <= 150 MiB peak RSS;
- ``one-day``: the same 1.4 M keys all in one day (split at 500,000 -> 3 files): <= 2.0 s,
  <= 150 MiB;
- ``--big 5000000``: 5 M keys in one day (10 files): completes, <= 200 MiB, time linear in
  keys (seconds per million keys beside the 1.4 M run's).

What runs: a dedicated database ``covidtracer_bench_<random>`` on ``DATABASE_URL``'s server
(dropped at the end), the ENF migrations, the keys seeded by one ``INSERT … SELECT
generate_series`` (in upload order) and ``VACUUM ANALYZE``, moto (``ThreadedMotoServer``) with
the stack bootstrapped as stage ``bench``, then ``export_service.export_keys`` -- the
function the scheduled job calls -- with ``now`` fixed. Each timed run is a fresh spawned
process (so the peak RSS is that run's own, moto's memory not included) after
``export_files`` is emptied. "busy" is each stage's summed time (PostgreSQL pages on the
reader thread, framing on the main thread, signing, deflate and S3 writes on the finisher
thread): the stages overlap, so they add up to more than the wall time.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/enf_export.py [--repeat 3] [--keys 1400000] [--big 5000000] [--pad]

Medians of 3 runs (2026-12-08, this machine, load average 1.0-1.6 as printed), with
padding on (``--pad``, as deployed):
- spread 1.73 s (run/reads 2.41x; reads alone 0.69 s), 88 MiB; one-day 1.46 s (2.08x), 133
  MiB; 5 M one day 3.98 s = 0.80 s per M keys (1.39x the reads alone, 2.86 s), 143 MiB.
  Before the deflate was fed once per page (it was fed once per merged segment, and a day's
  fakes cut a page into thousands): spread 3.39 s (4.78x), one-day 3.10 s, 5 M 5.43 s.
  Without padding: spread 1.35 s (2.03x), 84 MiB; one-day 1.08 s (1.61x), 133 MiB.
  The 1.3x target is missed at 1.4 M and nearly met at 5 M: a 1.4 M run costs ~1.7 s of
  this process's CPU plus ~0.7 s of the PostgreSQL backend's on the same 2 cores, so even
  perfectly overlapped it cannot finish under ~1.2 s (1.7x the reads). On AWS, Aurora's CPU
  is not the function's: at the export's 3,008 MB (1.7 vCPUs) the same CPU spread over the
  pipeline's threads needs at least ~1.0 s, about 1.4x the reads (the "on Lambda" line).

Medians of 3 runs (2026-12-01, this machine, 2 cores shared with other engineers' tests,
load average 1.0-1.8 as printed):
- streaming pipeline (pages of 65,536 keys by index-only scans, COPY BINARY; reader thread,
  framing, finisher thread):
  spread 2.65 s (2.34/2.65/3.32), 91 MiB peak (63 MiB before the run); reads alone 1.11 s.
  Busy: db page 1.71, encode 0.70, zip 0.89, sign 0.31, S3 put 0.31. Target 2.0 s missed
  under this load; process CPU 1.85 s.
  one-day 1.84 s (3.59/1.84/1.68) in a second session and 2.60 s (2.59/2.60/2.62) in the
  first; 135 MiB; reads alone 1.04-1.47 s. Both targets met in the quieter session.
  5 M one day: 7.45 s (7.03/7.45/8.08) = 1.49 s per M keys (1.13x the 1.4 M run's per key,
  the database reading from the OS cache at 5 M), 135 MiB: memory independent of the keys.
  A later session (load 2.1): spread 2.98 s, 91 MiB, reads alone 1.61 s; one-day 2.13 s,
  133 MiB, reads alone 0.92 s. Under load 3.0-3.6: spread 3.56 s, one-day 2.27 s.
  What dominates: CPU. A run needs about 1.6-1.9 s of this process (framing ~0.35 s of
  Python, deflate ~0.5 s, COPY and bytes ~0.2 s, signing and S3 calls) plus 1.0-1.5 s of a
  PostgreSQL backend (index-only scans, then packing and joining the rows: measured alone,
  the packing is half of it) plus moto's S3: ~3-3.5 core-seconds on 2 cores that other
  engineers' tests share, so ~1.7 s is the floor even perfectly overlapped on an idle
  machine. Measured and not kept: the packed row stored at upload (a generated column in
  the index) halves the database part (-0.35 s at 1.4 M) but costs ~10-15 % more database
  CPU per upload, against the 1,800 uploads/s target.
- before (one string_agg value per window, steps one after another): spread 3.61 s, 94 MiB;
  one-day 2.97 s, 322 MiB (the value grew with the day; > 16.7 M keys could not be read).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from lambda_cpu import function_memory_mb, on_lambda

NOW = datetime(2021, 10, 15, 13, 30, tzinfo=UTC)
DAY = 86_400
# (seconds, MiB): DESIGN §7 / issue 12. The 5 M one-day run has no time target, only
# "linear in keys": it prints seconds per million keys beside the 1.4 M run's.
# Issue 22: within 1.3x the same reads alone (measured beside each run), <= 150 MiB.
TARGET_X_READS = 1.3
TARGETS: dict[str, tuple[float | None, float]] = {"spread": (2.0, 150.0), "one-day": (2.0, 150.0)}
BIG_TARGET_MIB = 200.0
# The export function's memory per stage, and the threads its pipeline keeps busy (reader,
# framing, deflate and finisher): on Lambda the run is bounded by its CPU at that share.
EXPORT_MEMORY_MB = function_memory_mb("enf", "export_keys")
PIPELINE_THREADS = 3
# COVID Green's export Lambda on this machine kind against the same PostgreSQL, 1.4 M keys
# (issue 12): (seconds, MiB).
PEER = {"spread": (20.6, 452.0), "one-day": (40.6, 2355.0)}

# Seeds: rolling_start_number on a day boundary ``day_back`` days before NOW's day, valid
# the whole day (144 intervals), uploaded 3-12 h after it ended (before NOW's 12:00 delta
# boundary; the embargo ends at +2 h).
_SEED = """
INSERT INTO exposures (key_data, rolling_start_number, rolling_period,
                       transmission_risk_level, report_type, days_since_onset, created_at)
SELECT decode(md5(random()::text || i::text), 'hex'),
       (%(today)s - d) * 144, 144, (i %% 9), 1, (i %% 15) - 7,
       to_timestamp(((%(today)s - d) * 144 + 144) * 600 + 3 * 3600 + (i %% 16200) * 2)
FROM generate_series(1, %(keys)s) AS i,
     LATERAL (SELECT CASE WHEN %(one_day)s THEN 2 ELSE 1 + (i %% 14) END AS d) AS day_back
ORDER BY 7
"""


# Rows are inserted in created_at order, as uploads append them: a window's keys sit on
# neighbouring pages (inserted in random order, every window reads every page: ~2x slower).


def _dsn_with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _connect(url: str) -> Any:
    """The bench's own connection to the server itself: without the database's statement
    timeout (migration 0005), which the seeding and the reads-alone baseline outlast."""
    return psycopg2.connect(url, options="-c statement_timeout=0")


def _admin(url: str, statement: str) -> None:
    conn = _connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def seed(dsn: str, keys: int, one_day: bool) -> float:
    """Replace every key and file; returns seconds taken."""
    started = time.perf_counter()
    today = int(NOW.timestamp()) // DAY
    with _connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE exposures, export_files, export_lease")
        cur.execute(_SEED, {"today": today, "keys": keys, "one_day": one_day})
    _admin(dsn, "VACUUM ANALYZE exposures")
    return time.perf_counter() - started


class _Phases:
    """Seconds per phase, by wrapping names in the export service's namespace."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def wrap(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - started)

        return timed


def _hwm_mib() -> float:
    """This process's peak RSS (VmHWM), MiB. ``ru_maxrss`` would not do in a spawned child:
    Linux carries the parent's peak across fork + exec, and the parent holds moto's S3."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one_run(env: dict[str, str], profile: str | None, out: Any, code: str | None) -> None:
    """A fresh process: set the service environment, run the export once, report. With
    ``code``, the ``covidtracer`` package comes from that folder (another checkout's
    ``shared/src``: the same run, before a change)."""
    if code:
        import sys

        sys.path.insert(0, code)
    os.environ.update(env)
    from covidtracer.enffiles import service as export_service
    from covidtracer.enffiles import wiring as files_wiring
    from covidtracer.enfkeys.settings import enf_settings

    deps = files_wiring.deps_for(enf_settings())
    signer, store = deps.signer, deps.store
    store.put("warm/up", b"", "text/plain", "no-cache")  # client creation is not the export

    phases = _Phases()
    sql = export_service.sql
    # Busy time per stage, summed over its calls; the stages overlap (three threads), so
    # they add up to more than the wall time.
    sql._copy_value = phases.wrap("db page (reader)", sql._copy_value)  # type: ignore[attr-defined]
    writer: Any = export_service.PackedExportBin
    writer.append = phases.wrap("encode", writer.append)
    signer.sign = phases.wrap("sign (KMS)", signer.sign)  # type: ignore[method-assign]
    service: Any = export_service
    if hasattr(service, "build_zip"):  # before issue 22: the whole zip built at the end
        service.build_zip = phases.wrap("zip", service.build_zip)
    streaming = getattr(service, "StreamingDeflate", None)
    if streaming is not None:  # issue 22: deflated page by page, the zip finished at the end
        streaming.zip = phases.wrap("zip (finish)", streaming.zip)
    store.put = phases.wrap("s3 put", store.put)  # type: ignore[method-assign]

    before = _hwm_mib()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(export_service.export_keys, deps, export_service.ExportRun(), NOW)
        profiler.dump_stats(profile)
    else:
        result = export_service.export_keys(deps, export_service.ExportRun(), NOW)
    wall = time.perf_counter() - started
    peak = _hwm_mib()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    out.put(
        {
            "wall": wall,
            "cpu": cpu,
            "rss_before_mib": before,
            "rss_peak_mib": peak,
            "files": result.files,
            "keys": result.keys,
            "phases": phases.seconds,
        }
    )


def timed_run(
    env: dict[str, str], dsn: str, profile: str | None = None, code: str | None = None
) -> dict[str, Any]:
    with _connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE export_files, export_lease")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_one_run, args=(env, profile, queue, code))
    proc.start()
    report: dict[str, Any] = queue.get(timeout=600)
    proc.join()
    return report


def _print_run(n: int, r: dict[str, Any]) -> None:
    phases = ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items())
    print(
        f"  run {n}: {r['wall']:.2f} s (process CPU {r['cpu']:.2f} s), peak RSS"
        f" {r['rss_peak_mib']:.0f} MiB (before {r['rss_before_mib']:.0f}), {r['files']} files,"
        f" {r['keys']} keys; busy: {phases}"
    )


def db_read_alone(dsn: str) -> float:
    """The run's PostgreSQL reads on their own, one after another (no encoding, no S3): the
    part of the machine's limit that the pipeline overlaps everything else with."""
    from covidtracer.enffiles import db as export_db
    from covidtracer.enffiles import model as export_model
    from covidtracer.enffiles.settings import EnfExportSettings

    settle = EnfExportSettings().settle_seconds
    windows = export_model.plan_windows(int(NOW.timestamp()), 14, settle_seconds=settle)
    conn = _connect(dsn)
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    try:
        started = time.perf_counter()
        for window in windows:
            with conn, conn.cursor() as cur:
                for _ in export_db.packed_pages(cur, window):
                    pass
        return time.perf_counter() - started
    finally:
        conn.close()


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=1_400_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenario", choices=["spread", "one-day", "both"], default="both")
    parser.add_argument(
        "--big",
        type=int,
        default=0,
        help="also export this many keys from one day (5000000: the 'completes, <= 200 MiB,"
        " linear' target), after the 1.4 M one-day run",
    )
    parser.add_argument("--profile", help="cProfile one extra run of each scenario to this prefix")
    parser.add_argument(
        "--before",
        help="another checkout's shared/src: each repeat also runs the export with that code"
        " (alternating), and the medians of both are printed",
    )
    parser.add_argument(
        "--pad",
        action="store_true",
        help="with fake-key padding on (ENF_EXPORT_PAD_FILES, the deployed stages' default):"
        " every file also carries its day's fakes",
    )
    args = parser.parse_args()

    server_url = os.environ["DATABASE_URL"]
    name = f"covidtracer_bench_{uuid.uuid4().hex[:10]}"
    dsn = _dsn_with_db(server_url, name)
    _admin(server_url, f"CREATE DATABASE {name}")
    from moto.server import ThreadedMotoServer

    from tracerstack.bootstrap import bootstrap
    from tracerstack.environment import LOCAL_CREDENTIALS, service_environment
    from tracerstack.pytest_plugin import free_port

    os.environ.update(LOCAL_CREDENTIALS)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        from covidtracer import migrations
        from covidtracer.enfkeys.schema import MIGRATIONS

        conn = _connect(dsn)
        try:
            migrations.migrate(conn, MIGRATIONS)
        finally:
            conn.close()
        boot = bootstrap(f"http://127.0.0.1:{port}", "bench")
        env = service_environment(boot, partners_url="http://127.0.0.1:9", database_url=dsn)
        env["LOG_LEVEL"] = "WARNING"
        # As in production: KMS signs the 32-byte SHA-256, not the file. The local stack uses
        # RAW because moto re-hashes a DIGEST (its signature would not verify); that does not
        # matter here, and RAW would time shipping each ~10 MB file to moto in base64.
        env["ENF_EXPORT_KMS_MESSAGE_TYPE"] = "DIGEST"
        env["ENF_EXPORT_PAD_FILES"] = "true" if args.pad else "false"
        scenarios = ["spread", "one-day"] if args.scenario == "both" else [args.scenario]
        plan = [(scenario, args.keys) for scenario in scenarios]
        if args.big:
            plan.append(("one-day", args.big))
        per_million: dict[int, float] = {}
        for scenario, keys in plan:
            took = seed(dsn, keys, one_day=scenario == "one-day")
            print(f"{scenario}, {keys} keys: seeded in {took:.1f} s; {_load()}")
            runs, alone, before = [], [], []
            for n in range(1, args.repeat + 1):
                if args.before and n % 2 == 0:
                    before.append(timed_run(env, dsn, code=args.before))
                alone.append(db_read_alone(dsn))
                runs.append(timed_run(env, dsn))
                _print_run(n, runs[-1])
                if args.before and n % 2 == 1:
                    before.append(timed_run(env, dsn, code=args.before))
                if args.before:
                    print(f"    before: {before[-1]['wall']:.2f} s,"
                          f" {before[-1]['rss_peak_mib']:.0f} MiB")  # fmt: skip
            wall = statistics.median(r["wall"] for r in runs)
            rss = statistics.median(r["rss_peak_mib"] for r in runs)
            db_alone = statistics.median(alone)
            phases = {
                k: statistics.median(r["phases"].get(k, 0.0) for r in runs)
                for k in runs[0]["phases"]
            }
            per_million[keys] = wall / keys * 1e6
            if keys == args.keys:
                target_s, target_mib = TARGETS[scenario]
                peer_s, peer_mib = PEER[scenario]
                print(
                    f"  median: {wall:.2f} s (target <= {target_s:.1f} s; COVID Green"
                    f" {peer_s} s: {peer_s / wall:.1f}x), peak RSS {rss:.0f} MiB (target"
                    f" <= {target_mib:.0f} MiB; COVID Green {peer_mib:.0f} MiB:"
                    f" {peer_mib / rss:.1f}x)"
                )
            else:
                ratio = per_million[keys] / per_million.get(args.keys, per_million[keys])
                print(
                    f"  median: {wall:.2f} s = {per_million[keys]:.2f} s per M keys"
                    f" ({ratio:.2f}x the {args.keys} run's per key; target: linear),"
                    f" peak RSS {rss:.0f} MiB (target <= {BIG_TARGET_MIB:.0f} MiB)"
                )
            ratios = [r["wall"] / a for r, a in zip(runs, alone, strict=True)]
            ratio = statistics.median(ratios)
            print(
                f"  limit: the same reads alone (no encoding, no S3) take {db_alone:.2f} s"
                f" (median); the run is {ratio:.2f}x that, median of each run over the reads"
                f" beside it ({', '.join(f'{x:.2f}' for x in ratios)}; target <="
                f" {TARGET_X_READS}x: {'met' if ratio <= TARGET_X_READS else 'MISSED'});"
                f" {_load()}"
            )
            if before:
                b_wall = statistics.median(r["wall"] for r in before)
                b_rss = statistics.median(r["rss_peak_mib"] for r in before)
                print(
                    f"  before ({args.before}): median {b_wall:.2f} s = {b_wall / db_alone:.2f}x"
                    f" the reads alone, peak RSS {b_rss:.0f} MiB; after/before"
                    f" {wall / b_wall:.2f}"
                )
            print("  busy (median s): " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
            cpu = statistics.median(r["cpu"] for r in runs)
            print(
                f"  on Lambda: {cpu:.2f} s of this process's CPU (the reads' is Aurora's own) at"
                f" the stage's vCPU share, spread over the pipeline's {PIPELINE_THREADS} threads,"
                f" is at least {on_lambda(cpu, EXPORT_MEMORY_MB, PIPELINE_THREADS)};"
                f" the run is no faster than the reads alone ({db_alone:.2f} s)"
            )
            if args.profile:
                path = f"{args.profile}-{scenario}-{keys}.prof"
                timed_run(env, dsn, profile=path)
                print(f"  profile written to {path}")
    finally:
        moto.stop()
        _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
