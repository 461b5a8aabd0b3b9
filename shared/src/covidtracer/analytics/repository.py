"""The emitter's transport: Firehose ``PutRecordBatch``, and its in-memory twin for unit tests
(the contract tests run both against the same expectations, the real one against moto's
Firehose, which delivers to moto's S3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from covidtracer import aws


class FirehoseTransport:
    """``PutRecordBatch`` to the analytics stream (the emitter's ``Transport``)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def put(self, stream: str, records: Sequence[bytes]) -> list[bool]:
        client = self._client or aws.firehose()
        response = client.put_record_batch(
            DeliveryStreamName=stream, Records=[{"Data": record} for record in records]
        )
        if not response.get("FailedPutCount"):
            return [True] * len(records)
        return ["ErrorCode" not in answer for answer in response["RequestResponses"]]


class MemoryTransport:
    """The in-memory twin: keeps what was put; ``failures`` makes the next calls fail."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.calls = 0
        # Each entry is one call's outcome: an exception to raise, or per-record accepted flags.
        self.failures: list[BaseException | list[bool]] = []

    def put(self, stream: str, records: Sequence[bytes]) -> list[bool]:
        self.calls += 1
        if self.failures:
            outcome = self.failures.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            self.records.extend(r for r, ok in zip(records, outcome, strict=True) if ok)
            return list(outcome)
        self.records.extend(records)
        return [True] * len(records)
