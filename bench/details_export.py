"""Benchmark: one personal-details export run of 8,500 changed users against moto.

Target (DESIGN §7, issue 12): <= 3 s per run, against the local stack. Starts moto in server
mode in its own process, creates the stack's resources from infra/templates, seeds 8,500
PersonalDetails items once, then per repeat queues 17 messages of 500 users as the stream
handler does and times ``export_personal_details`` with the real adapters over HTTP
(and the export state object, as the app wires it). Two kinds of message, same run:

- ``carried`` (queue message version 2, what the stream handler sends): each change brings
  its export line, so a run makes 2 receives, 1 SSE-KMS PutObject, 2 DeleteMessageBatch
  rounds and 3 state calls, and reads no item;
- ``ids only`` (version 1, the previous design): the same plus 85 BatchGetItem calls.

It counts every AWS call (botocore's ``before-call`` events) and prints the DynamoDB read
units a real table would charge: strongly consistent reads, 1 unit per item up to 4 KB.

    .venv/bin/python bench/details_export.py [--users 8500] [--repeat 3]

Medians of 3 (2026-12-01, this machine, 2 cores shared, load average 2.3-3.9 as printed):
- carried: 0.55 s (0.48/0.80/0.55), target 3 s met; 10 AWS calls per run (0.0012 per user:
  ReceiveMessage 2, DeleteMessageBatch 2, GetObject 1 and PutObject 2 of the export state,
  PutObject 1 file; a first bench version also counted 2 refused PutObjects of files whose
  window already had one), 0 read units.
- ids only (the previous design, same run): 26.24 s (22.76/26.24/32.50), 98 calls (85
  BatchGetItem), 8,500 read units: 48x slower here; issue 12 measured it at 9.2 s on a
  quieter machine.
- final bench (each run its own window), load 2.3-3.4: carried 0.43 s (0.43/0.57/0.40),
  8 calls per run (0.0009 per user), 0 read units; ids only 13.19 s, 93 calls, 8,500 read
  units (31x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from covidtracer.nctsexport import messages, service
from covidtracer.nctsexport.repository import (
    DetailsTable,
    ExportBucket,
    ExportStateObject,
    UpdatesQueue,
)
from covidtracer.personaldetails.model import UserChange, iso_millis, record_line
from tracerstack.bootstrap import bootstrap
from tracerstack.environment import LOCAL_CREDENTIALS
from tracerstack.pytest_plugin import free_port

TARGET_SECONDS = 3.0
BEFORE_SECONDS = 9.2  # issue 12: ids only, every user read back


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


def _item(user: str, now: str) -> dict[str, Any]:
    return {
        "userId": user,
        "email": f"{user}@example.nz",
        "firstName": "Aroha",
        "middleName": "Mere",
        "lastName": "Smith",
        "phone": "+64210123456",
        "dateOfBirth": "1990-01-02",
        "gender": "female",
        "ethnicity": {"selected": ["Māori"], "other": "Tongan"},
        "updatedAt": now,
    }


def _seed_items(ddb: object, table: str, users: list[str]) -> None:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    now = iso_millis(datetime.now(UTC))
    for start in range(0, len(users), 25):
        requests = [
            {
                "PutRequest": {
                    "Item": {k: serializer.serialize(v) for k, v in _item(user, now).items()}
                }
            }
            for user in users[start : start + 25]
        ]
        ddb.batch_write_item(RequestItems={table: requests})  # type: ignore[attr-defined]


def _item_bytes(user: str, now: str) -> int:
    """DynamoDB's item size for a read-unit count: attribute names plus values."""
    values = {
        "userId": user, "email": f"{user}@example.nz", "firstName": "Aroha", "middleName": "Mere",
        "lastName": "Smith", "phone": "+64210123456", "dateOfBirth": "1990-01-02",
        "gender": "female", "ethnicity": "selectedMāoriotherTongan", "updatedAt": now,
    }  # fmt: skip
    return sum(len(k) + len(v.encode()) for k, v in values.items())


class Calls:
    """AWS calls per operation, from botocore's event hooks on each client."""

    def __init__(self, *clients: Any) -> None:
        self.counts: Counter[str] = Counter()
        for client in clients:
            client.meta.events.register("before-call.*.*", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.counts[event_name.split(".")[-1]] += 1

    def take(self) -> Counter[str]:
        counts, self.counts = self.counts, Counter()
        return counts


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


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
        state = ExportStateObject(s3, out["UserDetailsBucket"])
        calls = Calls(ddb, sqs, s3)
        medians: dict[str, float] = {}
        windows = iter(range(100))  # each run its own 5-minute window: one PutObject per file
        for mode in ("carried", "ids only"):
            timings, counts = [], Counter[str]()
            for run in range(args.repeat):
                at = datetime.now(UTC)
                stamp = iso_millis(at)
                changes = [
                    UserChange(u, at, sequence=str(n), record=record_line(_item(u, stamp)))
                    if mode == "carried"
                    else UserChange(u, at)
                    for n, u in enumerate(users)
                ]
                queue.send(messages.bodies(changes))
                calls.take()
                started = time.perf_counter()
                window = datetime.now(UTC) + timedelta(minutes=5 * next(windows))
                deps = service.ExportDeps(queue, table, bucket, state)
                result = service.export_personal_details(deps, window)
                elapsed = time.perf_counter() - started
                counts = calls.take()
                timings.append(elapsed)
                assert result.users == args.users and result.tombstones == 0, result
                print(
                    f"{mode}, run {run + 1}: {elapsed:.2f} s, {result.users} users,"
                    f" {result.read} read back -> {result.key}"
                )
            medians[mode] = median = statistics.median(timings)
            total = sum(counts.values())
            units = counts["BatchGetItem"] and sum(
                -(-_item_bytes(u, iso_millis(datetime.now(UTC))) // 4096) for u in users
            )
            print(
                f"{mode}: median of {args.repeat} {median:.2f} s (target <= {TARGET_SECONDS:.0f} s:"
                f" {'met' if median <= TARGET_SECONDS else 'MISSED'}); {_load()}"
            )
            print(
                f"  AWS calls per run {total} ({total / args.users:.4f} per user): "
                + ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
            )
            print(f"  DynamoDB read units a real table would charge per run: {units}")
        print(
            f"ids only / carried: {medians['ids only'] / medians['carried']:.1f}x;"
            f" before this change (issue 12): {BEFORE_SECONDS} s ="
            f" {BEFORE_SECONDS / medians['carried']:.1f}x the carried run"
        )
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
