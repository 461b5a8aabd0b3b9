"""Checks every Chalice app must pass; each service's own tests call them."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tracerstack import SERVICES

DEPLOYED_STAGES = ("dev", "staging", "prod")
# Heavy libraries an app must import lazily, on first use, not at cold start.
LAZY_MODULES = ("boto3", "botocore", "pynamodb", "psycopg2", "jwt", "requests", "urllib3")
SECRET_WORDS = ("password", "secret", "apikey", "api_key", "private")


def chalice_config(service: str) -> dict[str, Any]:
    return json.loads((SERVICES / service / ".chalice" / "config.json").read_text())  # type: ignore[no-any-return]


def problems_in_config(service: str) -> list[str]:
    config = chalice_config(service)
    problems = []
    if config.get("app_name") != f"covidtracer-{service}":
        problems.append(f"app_name should be covidtracer-{service}")
    stages = config.get("stages", {})
    for stage in DEPLOYED_STAGES:
        settings = stages.get(stage)
        if settings is None:
            problems.append(f"stage {stage} is missing")
            continue
        if not isinstance(settings.get("lambda_memory_size"), int):
            problems.append(f"stage {stage} must set lambda_memory_size (the deploy reads it)")
    # Deployed settings are template parameters (tracerstack.package): the stage-independent
    # stage that `make package` builds from must hold none of its own.
    release = stages.get("release")
    if release is None:
        problems.append("stage release (what `make package` builds) is missing")
    else:
        for name, value in release.get("environment_variables", {}).items():
            if any(word in name.lower() for word in SECRET_WORDS) and not name.endswith("_ID"):
                problems.append(f"stage release: {name} looks like a secret")
            if "127.0.0.1" in str(value) or "localhost" in str(value):
                problems.append(f"stage release: {name} points at this machine")
    return problems


def run_in_fresh_interpreter(service: str, code: str) -> str:
    """What ``code`` prints when run by a new Python in the service folder (as a cold start)."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=SERVICES / service,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def modules_imported_by_app(service: str) -> set[str]:
    """Top-level modules that ``import app`` loads, measured in a fresh interpreter."""
    probe = (
        "import sys; before = set(sys.modules); import app; "
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    return set(run_in_fresh_interpreter(service, probe).split())


def eagerly_imported_heavy_modules(service: str) -> set[str]:
    return modules_imported_by_app(service) & set(LAZY_MODULES)
