"""Cold start as Lambda sees it: ``import app`` plus the first request, per service, in fresh
interpreters, from the deployment package as it ships (DESIGN §7: <= 150 ms).

Lambda unpacks the zip into a read-only /var/task, so Python can use the bytecode the
package ships (``__pycache__/*.cpython-313.pyc`` whose recorded source time and size match)
and must compile, in memory and on every cold start, each module shipped without it. This
bench does the same: it unpacks ``build/<service>/deployment.zip`` (``make package``) with the
zip's file times, runs with ``PYTHONDONTWRITEBYTECODE=1`` (nothing gets cached between
starts) and puts on the path only the package and what the Lambda runtime provides (boto3,
botocore and their dependencies, from this venv). The first request is a real one against
moto and PostgreSQL (``DATABASE_URL``), through the handler Lambda calls:

- auth: CreateAuthChallenge (the trigger that sends the code by SES);
- details, enf: ``GET /health`` through the API Gateway proxy handler (settings, clients,
  a DynamoDB/S3 or PostgreSQL/S3 round trip);
- export: the stream handler with one change (settings, the queue message, SQS).

A last run per service with ``-X importtime`` splits the figure: import time by top-level
package (botocore and urllib3 belong to the Lambda runtime, but Lambda's cold start pays
for them), and the rest of the first request (clients loading their service models, I/O).

Also printed, for comparison: the package with every module compiled beforehand, and the
package with the heavy libraries (boto3, botocore, pynamodb, psycopg2, jwt, urllib3) imported
together with ``app`` instead of on first use: whether the lazy imports gain anything.
Interpreter start-up itself (~15 ms) is not included: Lambda's runtime has started before it
imports the handler.

Medians of 7 (2026-12-01, after issue 13, this machine, 2 cores shared, load average
1.6-2.5), import + first request, ms:

    service   as shipped   all bytecode   heavy libraries eager
    auth          276          260              271
    details       353          341              460
    enf           317          333              397
    export        375          371              404

The target (150 ms) is missed everywhere. The lazy imports gain 107 ms (details), 80 ms (enf)
and 29 ms (export), because no first request needs every heavy library; in auth they are
neutral (the trigger needs them all) and stay, as that package's sign-in code is shared with
details. What dominates (one -X importtime run each): botocore + urllib3 + six + s3transfer,
which the Lambda runtime provides but the cold start pays for, then the first clients loading
their service models and the round trips; our own modules cost 20-50 ms.

    make package   # once, builds what ships
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/cold_start.py [RUNS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from tracerstack.samples import COGNITO_USER_SUB, cognito_trigger_event

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "services"
BUILD = ROOT / "build"
TARGET_MS = 150.0

_API_EVENT = {
    "resource": "/health",
    "path": "/health",
    "httpMethod": "GET",
    "headers": {"Accept": "application/json", "Host": "example.execute-api"},
    "multiValueHeaders": {"Accept": ["application/json"]},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "requestContext": {
        "resourcePath": "/health",
        "httpMethod": "GET",
        "path": "/api/health",
        "requestId": "cold-start",
        "stage": "api",
        "identity": {"sourceIp": "127.0.0.1"},
    },
    "body": None,
    "isBase64Encoded": False,
}
_CREATE_AUTH_CHALLENGE = cognito_trigger_event(
    "CreateAuthChallenge_Authentication",
    {
        "userAttributes": {"sub": COGNITO_USER_SUB, "email": "a@example.nz"},
        "challengeName": "CUSTOM_CHALLENGE",
        "session": [],
        "userNotFound": False,
    },
    {"publicChallengeParameters": {}, "privateChallengeParameters": {}},
)
FIRST_REQUEST = {
    "auth": f"app.create_auth_challenge({_CREATE_AUTH_CHALLENGE!r}, context)",
    "details": f"app.app({_API_EVENT!r}, context)",
    "enf": f"app.app({_API_EVENT!r}, context)",
    # The stream handler: the export's most frequent invocation (the 5-minute run on an
    # empty queue would mostly time SQS's 1 s long poll).
    "export": (
        "app.queue_changed_personal_details({'Records': [{'eventID': '1', 'eventName': 'MODIFY',"
        " 'eventSource': 'aws:dynamodb', 'eventSourceARN': 'arn:aws:dynamodb:ap-southeast-2:"
        "123456789012:table/t/stream/2021', 'dynamodb': {'ApproximateCreationDateTime':"
        " 1633381512, 'Keys': {'userId': {'S': 'u1'}}, 'SequenceNumber': '1',"
        " 'NewImage': {'userId': {'S': 'u1'}}}}]}, context)"
    ),
}
PROBE = """
import time, types
started = time.perf_counter()
{preload}
import app
imported = time.perf_counter()
context = types.SimpleNamespace(aws_request_id="cold-start", function_name="bench",
                                memory_limit_in_mb=1024, get_remaining_time_in_millis=lambda: 30000)
answer = {request}
done = time.perf_counter()
status = answer.get("statusCode") if isinstance(answer, dict) else None
print("COLD", (imported - started) * 1000, (done - imported) * 1000, status)
"""


def _unpack(service: str, into: Path) -> Path:
    """The package's files with the zip's times (as Lambda's /var/task has them)."""
    task = into / service
    with zipfile.ZipFile(BUILD / service / "deployment.zip") as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, task))
            stamp = time.mktime((*info.date_time, 0, 0, -1))
            os.utime(path, (stamp, stamp))
    return task


def _shipped_bytecode(task: Path) -> tuple[int, int, int]:
    """(modules, .pyc shipped, .pyc Python accepts): a timestamp-based .pyc holds its
    source's time and size when compiled, and is ignored unless the file has them."""
    sources = list(task.rglob("*.py"))
    shipped = valid = 0
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        if not pyc.exists():
            continue
        shipped += 1
        header = pyc.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        stat = source.stat()
        if flags & 1 or (
            int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
            and int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF
        ):
            valid += 1
    return len(sources), shipped, valid


def _with_valid_bytecode(task: Path, into: Path) -> Path:
    """A copy of the package with every module compiled to unchecked-hash .pyc (PEP 552),
    which Python accepts whatever the files' times: what a package shipping its bytecode
    would give (see the closing note of issue 12 for the packaging side)."""
    import compileall
    import py_compile
    import shutil

    compiled = into / f"{task.name}-bytecode"
    shutil.copytree(task, compiled, symlinks=True)
    compileall.compile_dir(
        compiled,
        quiet=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    return compiled


# The heavy libraries the services import on first use (tracerstack.service_checks), loaded
# with ``app`` instead: whether importing them lazily gains anything on a cold start.
EAGER = (
    "import importlib\n"
    "for name in ('boto3', 'botocore.session', 'pynamodb.models', 'psycopg2', 'jwt', 'urllib3'):\n"
    "    try:\n"
    "        importlib.import_module(name)\n"
    "    except ImportError:\n"
    "        pass"
)


def _run(
    cwd: Path, path: list[Path], env: dict[str, str], service: str, preload: str = ""
) -> tuple[float, float]:
    code = PROBE.format(request=FIRST_REQUEST[service], preload=preload)
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import sys; sys.path[:0] = {[str(p) for p in path]!r}\n{code}",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("COLD ")]
    if result.returncode or not lines:
        raise RuntimeError(f"{service}: {result.stderr[-2000:]}")
    _, imported, request, status = lines[-1].split()
    if status not in ("None", "200"):
        raise RuntimeError(
            f"{service}: the first request answered {status}: {result.stdout[-500:]}"
        )
    return float(imported), float(request)


def _import_profile(cwd: Path, path: list[Path], env: dict[str, str], service: str) -> str:
    """Import time (ms, summed self time) by top-level package over import + first request."""
    code = PROBE.format(request=FIRST_REQUEST[service], preload="")
    result = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", "-c",
         f"import sys; sys.path[:0] = {[str(p) for p in path]!r}\n{code}"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    by_package: dict[str, float] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        top = name.strip().split(".")[0]
        by_package[top] = by_package.get(top, 0.0) + int(self_us) / 1000
    _, imported, request, _ = next(
        line for line in result.stdout.splitlines() if line.startswith("COLD ")
    ).split()
    imports = sum(by_package.values())
    rest = float(imported) + float(request) - imports
    top = sorted(by_package.items(), key=lambda kv: -kv[1])[:6]
    return ", ".join(f"{name} {ms:.0f}" for name, ms in top) + (
        f"; imports {imports:.0f} ms in all, the rest (clients, I/O) {rest:.0f} ms"
    )


def _median(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    imports = statistics.median(s[0] for s in samples)
    requests = statistics.median(s[1] for s in samples)
    total = statistics.median(s[0] + s[1] for s in samples)
    return imports, requests, total


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    sys.path.insert(0, str(ROOT / "infra" / "local"))
    import logging

    from moto.server import ThreadedMotoServer

    from tracerstack.bootstrap import bootstrap
    from tracerstack.environment import service_environment
    from tracerstack.pytest_plugin import free_port
    from tracerstack.vendor import runtime_path

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        boot = bootstrap(f"http://127.0.0.1:{port}", "cold")
        database = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)},
            **service_environment(boot, partners_url="http://127.0.0.1:9", database_url=database),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LOG_LEVEL": "WARNING",
        }
        print(
            f"import app + first request, median of {runs} fresh interpreters per service"
            f" (target <= {TARGET_MS:.0f} ms); load average"
            f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            runtime = runtime_path(root)
            for service in sorted(p.name for p in SERVICES.iterdir() if (p / "app.py").exists()):
                if not (BUILD / service / "deployment.zip").exists():
                    print(f"  {service:<8} no build/{service}/deployment.zip: run make package")
                    continue
                task = _unpack(service, root)
                modules, shipped, valid = _shipped_bytecode(task)
                compiled = _with_valid_bytecode(task, root)
                variants = [
                    (f"as shipped ({shipped}/{modules} .pyc, {valid} valid)", task, ""),
                    ("every module with valid bytecode", compiled, ""),
                    ("as shipped, heavy libraries eager", task, EAGER),
                ]
                for label, folder, preload in variants:
                    runs_ = [
                        _run(folder, [folder, runtime], env, service, preload) for _ in range(runs)
                    ]
                    imports, request, total = _median(runs_)
                    verdict = "met" if total <= TARGET_MS else "MISSED"
                    print(
                        f"  {service:<8} {label:<36} import {imports:6.1f} + first request"
                        f" {request:6.1f} = {total:6.1f} ms  {verdict}"
                    )
                    profile = _import_profile(folder, [folder, runtime], env, service)
                    print(f"  {'':<8}   by package (ms, one -X importtime run): {profile}")
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
