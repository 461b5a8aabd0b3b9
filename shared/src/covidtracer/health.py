"""Dependency checks behind each API's ``GET /health``.

Each check is a name and a callable; a check passes when it returns without raising. The
report names dependencies by their role (``dynamodb:personal_details``), never by physical
name, and carries no error text: the reason goes to the log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from covidtracer import aws, db
from covidtracer.logs import get_logger
from covidtracer.settings import DatabaseSettings, Tables

log = get_logger(__name__)

Check = Callable[[], object]


def release_version() -> str:
    """The release this function runs, set by the packaged template (``RELEASE_VERSION``)."""
    return os.environ.get("RELEASE_VERSION", "").strip() or "unreleased"


def run(checks: Mapping[str, Check]) -> tuple[bool, dict[str, Any]]:
    """Run every check at once; returns (all passed, report with the release version).

    At once, so the answer takes as long as the slowest check, not their sum: each check is
    bounded by its dependency's deadline (docs/operations.md, "Time budget"), and six
    frozen DynamoDB tables one after another would pass API Gateway's 29 s.
    """
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(len(checks), 1), thread_name_prefix="health") as pool:
        # Each in a copy of this context, so its log lines carry the request id.
        outcomes = {
            name: pool.submit(contextvars.copy_context().run, _timed, check)
            for name, check in checks.items()
        }
    report: dict[str, Any] = {}
    healthy = True
    for name, outcome in outcomes.items():
        ms, error = outcome.result()
        if error is None:
            report[name] = {"status": "ok", "ms": ms}
            continue
        healthy = False
        report[name] = {"status": "unavailable"}
        log.warning("health check failed", extra={"check": name, "error_type": error})
    status = "ok" if healthy else "unavailable"
    return healthy, {"status": status, "version": release_version(), "checks": report}


def _timed(check: Check) -> tuple[float, str | None]:
    """(milliseconds taken, the error's type name or None)."""
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return 0.0, type(exc).__name__
    return round((time.perf_counter() - started) * 1000, 1), None


def table_checks(tables: Tables) -> dict[str, Check]:
    return {f"dynamodb:{f.name}": _describe_table(getattr(tables, f.name)) for f in fields(tables)}


def _describe_table(name: str) -> Check:
    return lambda: aws.dynamodb().describe_table(TableName=name)


def bucket_check(role: str, bucket: str) -> dict[str, Check]:
    return {f"s3:{role}": lambda: aws.s3().head_bucket(Bucket=bucket)}


def database_check(database: DatabaseSettings) -> dict[str, Check]:
    return {"postgresql": lambda: db.ping(database)}
