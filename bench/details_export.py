"""Benchmark: one personal-details export run of 8,500 changed users against moto.

Target (DESIGN §7): <= 10 s per run. Starts moto in server mode in its own process, creates
the stack's resources from infra/templates, seeds 8,500 PersonalDetails items once, then per
repeat queues 17 messages of 500 ids (as the stream handler would) and times
``export_personal_details`` with the real adapters over HTTP: 2 receives, 85 BatchGetItem
calls, one SSE-KMS PutObject, 2 DeleteMessageBatch rounds.

    .venv/bin/python bench/details_export.py [--users 8500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

from covidtracer.export import messages, service
from covidtracer.export.model import UserChange, iso_millis
from covidtracer.export.repository import DetailsTable, ExportBucket, UpdatesQueue
from tracerstack.bootstrap import bootstrap
from tracerstack.environment import LOCAL_CREDENTIALS
from tracerstack.pytest_plugin import free_port

TARGET_SECONDS = 10.0


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1).close()  # noqa: S310
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto did not start")


def _seed_items(ddb: object, table: str, users: list[str]) -> None:
    now = iso_millis(datetime.now(UTC))
    for start in range(0, len(users), 25):
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "userId": {"S": user},
                        "email": {"S": f"{user}@example.nz"},
                        "firstName": {"S": "Aroha"},
                        "middleName": {"S": "Mere"},
                        "lastName": {"S": "Smith"},
                        "phone": {"S": "+64210123456"},
                        "dateOfBirth": {"S": "1990-01-02"},
                        "gender": {"S": "female"},
                        "ethnicity": {
                            "M": {"selected": {"L": [{"S": "Māori"}]}, "other": {"S": "Tongan"}}
                        },
                        "updatedAt": {"S": now},
                    }
                }
            }
            for user in users[start : start + 25]
        ]
        ddb.batch_write_item(RequestItems={table: requests})  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8_500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    process, url = _start_moto()
    try:
        boot = bootstrap(url, "bench")
        out = boot.outputs
        ddb, sqs, s3 = boot.client("dynamodb"), boot.client("sqs"), boot.client("s3")
        users = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(args.users)]
        _seed_items(ddb, out["PersonalDetailsTable"], users)
        queue = UpdatesQueue(sqs, out["PersonalDataUpdatesQueueUrl"])
        table = DetailsTable(ddb, out["PersonalDetailsTable"])
        bucket = ExportBucket(s3, out["UserDetailsBucket"], out["DataKeyArn"])
        at = datetime.now(UTC)
        timings = []
        for run in range(args.repeat):
            queue.send(messages.bodies([UserChange(u, at) for u in users]))
            started = time.perf_counter()
            result = service.export_personal_details(queue, table, bucket, datetime.now(UTC))
            elapsed = time.perf_counter() - started
            timings.append(elapsed)
            assert result.users == args.users and result.tombstones == 0, result
            print(f"run {run + 1}: {elapsed:.2f} s, {result.users} users -> {result.key}")
        median = statistics.median(timings)
        verdict = "OK" if median <= TARGET_SECONDS else "OVER TARGET"
        print(
            f"median of {args.repeat}: {median:.2f} s (target <= {TARGET_SECONDS:.0f} s) {verdict}"
        )
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
