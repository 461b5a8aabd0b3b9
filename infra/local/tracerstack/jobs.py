"""Scheduled jobs of the local stack, run now (``make job JOB=…``) or on a timer.

In AWS each job is a Chalice ``@app.schedule`` function. Locally a job runs in a fresh
Python process inside its service's folder (every service's module is called ``app``), with
the stack's environment, and is invoked the way EventBridge invokes it: with a scheduled
event and a Lambda-like context. What it writes to stdout is shown and, as Lambda would,
put into its function's log group (``tracerstack.cloudwatch``), whose subscription carries
its analytics events to the analytics bucket before ``run`` returns.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

from tracerstack import SERVICES


@dataclass(frozen=True)
class Job:
    name: str
    service: str
    function: str
    period_seconds: int
    # Run just after each multiple of the period (wall clock) instead of a period after the
    # last run: the ENF export's windows end on the minute, so a run a moment later lists an
    # upload as soon as its window has closed.
    aligned: bool = False


JOBS = {
    job.name: job
    for job in (
        # Every 5 minutes in AWS; every minute here, just after the local 1-minute window ends.
        Job("enf-export", "enf", "export_keys", 60, aligned=True),
        Job("enf-cleanup", "enf", "cleanup", 3600),
        Job("events-feed", "details", "publish_exposure_events_feed", 7200),
        Job("details-export", "export", "export_personal_details", 300),
        Job("usage-report", "export", "usage_report", 86_400),
    )
}


class JobUnavailable(LookupError):
    """The job is unknown, or its service does not define it yet."""


def scheduled_event(job: Job) -> dict[str, object]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": os.environ.get("AWS_REGION", "ap-southeast-2"),
        "resources": [f"arn:aws:events:local:123456789012:rule/{job.name}"],
        "detail": {},
    }


def run(name: str, environment: dict[str, str]) -> int:
    """Run job ``name`` in its service's folder; returns the process's exit code."""
    job = JOBS.get(name)
    if job is None:
        raise JobUnavailable(f"unknown job {name!r}; the jobs are: {', '.join(sorted(JOBS))}")
    env = {**os.environ, **environment}
    ran = subprocess.run(
        [sys.executable, "-m", "tracerstack.jobs", name],
        cwd=SERVICES / job.service,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    sys.stdout.write(ran.stdout)
    sys.stdout.flush()
    _ship(job, ran.stdout.splitlines(), env)
    return ran.returncode


def _ship(job: Job, lines: list[str], environment: dict[str, str]) -> None:
    """The job's output into its function's log group, when there is a stack to hold it."""
    endpoint = environment.get("AWS_ENDPOINT_URL")
    if not endpoint or not lines:
        return
    from tracerstack import cloudwatch
    from tracerstack.bootstrap import admin_client

    group = cloudwatch.log_group(job.service, environment.get("STAGE", "local"), job.function)
    logs = admin_client(endpoint, "logs", environment.get("AWS_REGION", "ap-southeast-2"))
    try:
        cloudwatch.Shipper(logs, group).ship(lines)
    except Exception as exc:  # the job ran; only its log could not be kept
        print(f"job {job.name}: its log was not shipped to {group}: {exc}", file=sys.stderr)


def _invoke_here(name: str) -> int:
    """Inside the service folder: import ``app`` and call the job's function."""
    job = JOBS[name]
    sys.path.insert(0, os.getcwd())
    module = importlib.import_module("app")
    handler = getattr(module, job.function, None)
    if handler is None:
        print(
            f"job {name!r} is not available yet: services/{job.service}/app.py defines no "
            f"{job.function}()",
            file=sys.stderr,
        )
        return 3
    context = SimpleNamespace(
        aws_request_id=str(uuid.uuid4()),
        function_name=job.function,
        get_remaining_time_in_millis=lambda: 900_000,
    )
    result = handler(scheduled_event(job), context)
    if result is not None:
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(_invoke_here(sys.argv[1]))
