"""Cold start: wall time of `import app` per service, in fresh interpreters (DESIGN §7: ≤ 150 ms).

Each run starts a new Python process in the service folder and times only the import, the
part of a Lambda cold start the code controls. Prints the median of RUNS runs per service.

    .venv/bin/python bench/cold_start.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from tracerstack.service_checks import run_in_fresh_interpreter

SERVICES = Path(__file__).resolve().parents[1] / "services"
TARGET_MS = 150.0
PROBE = "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"


def measure(service: str, runs: int) -> float:
    samples = [
        float(run_in_fresh_interpreter(service, PROBE).strip().splitlines()[-1])
        for _ in range(runs)
    ]
    return statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print(f"import app, median of {runs} fresh interpreters (target <= {TARGET_MS:.0f} ms)")
    for service in sorted(p.name for p in SERVICES.iterdir() if (p / "app.py").exists()):
        median = measure(service, runs)
        verdict = "ok" if median <= TARGET_MS else "OVER TARGET"
        print(f"  {service:<8} {median:7.1f} ms   {verdict}")


if __name__ == "__main__":
    main()
