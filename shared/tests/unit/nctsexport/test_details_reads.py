"""Reading 8,500 users back: BatchGetItem fan-out, 100 keys a call, bounded retries of the
keys DynamoDB leaves unprocessed (throttling)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from covidtracer.errors import Unavailable
from covidtracer.nctsexport.repository import BATCH_GET_KEYS, UNPROCESSED_RETRIES, DetailsTable


class Dynamo:
    """BatchGetItem as DynamoDB answers it, taking ``latency`` a call; a call asking for more
    than ``served_at_most`` keys is throttled: half its keys come back unprocessed."""

    def __init__(self, latency: float = 0.02, served_at_most: int = BATCH_GET_KEYS) -> None:
        self.latency, self.served_at_most = latency, served_at_most
        self.calls = 0
        self.in_flight = self.most_in_flight = 0
        self.sizes: list[int] = []
        self._lock = threading.Lock()

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        [(table, request)] = RequestItems.items()
        keys = request["Keys"]
        assert request["ConsistentRead"] is True
        with self._lock:
            self.calls += 1
            throttle = len(keys) > self.served_at_most
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.sizes.append(len(keys))
        time.sleep(self.latency)
        with self._lock:
            self.in_flight -= 1
        served, left = (keys[: len(keys) // 2], keys[len(keys) // 2 :]) if throttle else (keys, [])
        response: dict[str, Any] = {
            "Responses": {table: [{"userId": k["userId"], "firstName": {"S": "Aroha"}}
                                  for k in served]},
        }  # fmt: skip
        if left:
            response["UnprocessedKeys"] = {table: {"Keys": left, "ConsistentRead": True}}
        return response


def users(n: int) -> list[str]:
    return [f"{i:08d}-0000-4000-8000-000000000000" for i in range(n)]


def test_the_batches_are_read_in_parallel_100_keys_each() -> None:
    dynamo = Dynamo(latency=0.02)
    table = DetailsTable(dynamo, "PersonalDetails", parallel=8)  # type: ignore[arg-type]
    found = table.current(users(8_500))
    assert set(found) == set(users(8_500))
    assert found[users(1)[0]]["firstName"] == "Aroha"
    assert dynamo.calls == 85 and max(dynamo.sizes) == BATCH_GET_KEYS
    assert dynamo.most_in_flight == 8  # one at a time before issue 22
    # Nothing is left running once the reads return.
    assert not [t for t in threading.enumerate() if t.name.startswith("batch-get")]


def test_unprocessed_keys_are_retried_with_jittered_backoff_until_read() -> None:
    dynamo = Dynamo(latency=0.0, served_at_most=50)  # each batch's first call is throttled
    waits: list[float] = []
    table = DetailsTable(dynamo, "PersonalDetails", sleep=waits.append, parallel=4)  # type: ignore[arg-type]
    found = table.current(users(1_000))
    assert set(found) == set(users(1_000))
    assert dynamo.calls == 20 and len(waits) == 10
    assert all(0.025 <= w <= 0.05 * 2**UNPROCESSED_RETRIES for w in waits)
    assert len(set(waits)) > 1  # jittered: throttled batches do not retry in step


def test_keys_still_unprocessed_after_the_last_retry_make_the_run_unavailable() -> None:
    dynamo = Dynamo(latency=0.0, served_at_most=0)
    waits: list[float] = []
    table = DetailsTable(dynamo, "PersonalDetails", sleep=waits.append, parallel=1)  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        table.current(users(100))
    assert dynamo.calls == UNPROCESSED_RETRIES + 1  # bounded: the messages wait for a run
    assert sum(waits) <= 0.05 * (2**UNPROCESSED_RETRIES - 1)
