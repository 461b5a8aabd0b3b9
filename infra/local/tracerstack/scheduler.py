"""The local stand-in for EventBridge schedules: runs each job on its period.

A job its service does not define yet is skipped quietly (the job runner says so when run
by hand). Each run is a separate process, as each Lambda invocation would be.
"""

from __future__ import annotations

import os
import time

from tracerstack import jobs

TICK_SECONDS = 5.0


def main() -> None:
    environment = dict(os.environ)
    due = {name: time.monotonic() + job.period_seconds for name, job in jobs.JOBS.items()}
    while True:
        now = time.monotonic()
        for name, job in jobs.JOBS.items():
            if now >= due[name]:
                due[name] = now + job.period_seconds
                code = jobs.run(name, environment)
                if code not in (0, 3):
                    print(f"job {name} exited with {code}", flush=True)
        time.sleep(TICK_SECONDS)


if __name__ == "__main__":
    main()
