"""The local stand-in for EventBridge schedules: runs each job on its period.

A job its service does not define yet is skipped quietly (the job runner says so when run
by hand). Each run is a separate process, as each Lambda invocation would be, with its
service's settings and execution role (``.local/env-<service>.json``).
"""

from __future__ import annotations

import time

from tracerstack import jobs

TICK_SECONDS = 1.0
# How long the local ENF export waits after a window ends before building it
# (ENF_EXPORT_SETTLE_SECONDS; 60 in AWS): an upload commits in milliseconds here.
LOCAL_SETTLE_SECONDS = 5
# How long after a period's end an aligned job runs: the window it exports has settled.
ALIGNED_DELAY_SECONDS = LOCAL_SETTLE_SECONDS + 1.0


def next_due(job: jobs.Job, now: float, wall: float) -> float:
    """When (on the monotonic clock reading ``now``) ``job`` runs next; ``wall`` is
    ``time.time()`` at the same moment."""
    if not job.aligned:
        return now + job.period_seconds
    return now + job.period_seconds - wall % job.period_seconds + ALIGNED_DELAY_SECONDS


def main() -> None:
    from tracerstack import stack  # started by it, so not imported at module level

    due = {name: next_due(job, time.monotonic(), time.time()) for name, job in jobs.JOBS.items()}
    while True:
        now = time.monotonic()
        for name, job in jobs.JOBS.items():
            if now >= due[name]:
                due[name] = next_due(job, now, time.time())
                # The job's own service's settings and role, as its Lambda has.
                code = jobs.run(name, stack.service_environment_of(job.service))
                if code not in (0, 3):
                    print(f"job {name} exited with {code}", flush=True)
        time.sleep(TICK_SECONDS)


if __name__ == "__main__":
    main()
