"""I/O adapters of the export: the updates queue, the details table and the export bucket.

Each translates boto errors into ``Unavailable`` (``raise … from exc``) so the service sees
domain errors only. Clients are passed in (tests point them at moto; ``wiring`` uses
``covidtracer.aws``).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from covidtracer import aws, logs
from covidtracer.errors import Unavailable
from covidtracer.nctsexport import messages
from covidtracer.personaldetails.model import iso_millis, parse_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

log = logs.get_logger(__name__)

# BatchGetItem takes at most 100 keys; DeleteMessageBatch and friends 10 entries.
BATCH_GET_KEYS = 100
SQS_BATCH_ENTRIES = 10
# BatchGetItem calls in flight at once: 8,500 users are 85 calls, each a DynamoDB round trip
# of ~10-20 ms, so 8 at a time make the reads ~0.2 s instead of ~1.5 s. More would only meet
# the table's read capacity sooner: a new on-demand table serves 12,000 read units a second
# and a partition 3,000, and each strongly consistent read of an item under 4 KB is one unit
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html),
# so 8,500 reads take at least ~0.7 s on a new table whatever the fan-out; the rest comes
# back as UnprocessedKeys and is retried below. The DynamoDB client pools 10 connections.
BATCH_GET_PARALLEL = 8
# Throttled reads come back as UnprocessedKeys; retried with jittered backoff this many
# times (up to 0.05 s doubling: at most ~3 s in all) before the run gives up and the
# messages wait for the next run.
UNPROCESSED_RETRIES = 6
SEND_RETRIES = 3


def _boto_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int


class UpdatesQueue:
    """The ``PersonalDataUpdates`` SQS queue."""

    def __init__(self, client: SQSClient, url: str) -> None:
        self._client = client
        self._url = url

    def send(self, bodies: Sequence[str]) -> None:
        """Send every body; raises ``Unavailable`` if some could not be sent after retries.

        The stream handler then fails and Lambda redelivers the stream batch: a change may
        be queued twice (harmless: the consumer re-reads the item), never dropped.
        """
        try:
            for batch in messages.send_batches(bodies):
                entries = {str(i): body for i, body in enumerate(batch)}
                for _ in range(SEND_RETRIES):
                    response = self._client.send_message_batch(
                        QueueUrl=self._url,
                        Entries=[{"Id": i, "MessageBody": b} for i, b in entries.items()],
                    )
                    entries = {f["Id"]: entries[f["Id"]] for f in response.get("Failed", [])}
                    if not entries:
                        break
                if entries:
                    raise Unavailable("sqs")
        except _boto_errors() as exc:
            raise Unavailable("sqs") from exc

    def receive(
        self, max_messages: int, visibility_timeout: int | None, wait_seconds: int
    ) -> list[ReceivedMessage]:
        params: dict[str, Any] = {
            "QueueUrl": self._url,
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": wait_seconds,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if visibility_timeout is not None:
            params["VisibilityTimeout"] = visibility_timeout
        try:
            response = self._client.receive_message(**params)
        except _boto_errors() as exc:
            raise Unavailable("sqs") from exc
        return [
            ReceivedMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m.get("Body", ""),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
            )
            for m in response.get("Messages", [])
        ]

    def delete(self, received: Sequence[ReceivedMessage]) -> int:
        """Delete messages; returns how many could not be (they come back: a repeat, no loss)."""
        return self._batched("delete_message_batch", received, {})

    def release(self, received: Sequence[ReceivedMessage]) -> int:
        """Make messages visible again now, for the next run."""
        return self._batched("change_message_visibility_batch", received, {"VisibilityTimeout": 0})

    def _batched(
        self, operation: str, received: Sequence[ReceivedMessage], extra: Mapping[str, Any]
    ) -> int:
        failed = 0
        call = getattr(self._client, operation)
        try:
            for start in range(0, len(received), SQS_BATCH_ENTRIES):
                chunk = received[start : start + SQS_BATCH_ENTRIES]
                response = call(
                    QueueUrl=self._url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m.receipt_handle, **extra}
                        for i, m in enumerate(chunk)
                    ],
                )
                failed += len(response.get("Failed", []))
        except _boto_errors() as exc:
            raise Unavailable("sqs") from exc
        return failed


class DetailsTable:
    """Reads current ``PersonalDetails`` items (see ``model`` for the item contract)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        sleep: Any = time.sleep,
        parallel: int = BATCH_GET_PARALLEL,
    ) -> None:
        self._client = client
        self._table = table
        self._sleep = sleep
        self._parallel = parallel

    def current(self, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The items that exist now, by ``userId``, as plain Python values.

        Strongly consistent reads: the stream can reach the consumer before an eventually
        consistent read would see the write. The batches of 100 keys are read
        ``parallel`` at a time, on threads that all end before this returns (nothing runs
        after the invocation). Raises ``Unavailable`` if DynamoDB fails or keeps throttling.
        """
        from concurrent.futures import ThreadPoolExecutor

        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        chunks = list(_chunks(list(user_ids), BATCH_GET_KEYS))
        found: dict[str, dict[str, Any]] = {}
        if not chunks:
            return found
        workers = max(1, min(self._parallel, len(chunks)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch-get") as pool:
            for items in pool.map(lambda chunk: list(self._batch_get(chunk)), chunks):
                for raw in items:
                    item = {name: deserializer.deserialize(value) for name, value in raw.items()}
                    found[str(item["userId"])] = item
        return found

    def _batch_get(self, user_ids: Sequence[str]) -> Iterator[Mapping[str, Any]]:
        request: dict[str, Any] = {
            self._table: {
                "Keys": [{"userId": {"S": user_id}} for user_id in user_ids],
                "ConsistentRead": True,
            }
        }
        delay = 0.05
        for attempt in range(UNPROCESSED_RETRIES + 1):
            try:
                response = self._client.batch_get_item(RequestItems=request)
            except _boto_errors() as exc:
                raise Unavailable("dynamodb") from exc
            yield from response.get("Responses", {}).get(self._table, [])
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                return
            if attempt < UNPROCESSED_RETRIES:
                # Jittered: the parallel batches throttled together do not retry in step.
                self._sleep(random.uniform(delay / 2, delay))  # noqa: S311 - not a secret
                delay *= 2
        raise Unavailable("dynamodb")


class ExportBucket:
    """The ``UserDetails`` bucket NCTS reads; objects are SSE-KMS with the data key."""

    def __init__(self, client: S3Client, bucket: str, kms_key_id: str) -> None:
        self._client = client
        self._bucket = bucket
        self._kms_key_id = kms_key_id

    def put_new(self, keys: Iterable[str], body: bytes) -> str:
        """Write ``body`` under the first of ``keys`` that does not exist yet; returns it.

        ``IfNoneMatch="*"`` makes S3 refuse to replace an existing object (412), atomically,
        so two runs in one window can never overwrite each other's file. Raises
        ``Unavailable`` on S3 failures or when every key is taken.
        """
        for key in keys:
            try:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/x-ndjson",
                    ServerSideEncryption="aws:kms",
                    SSEKMSKeyId=self._kms_key_id,
                    IfNoneMatch="*",
                )
            except _boto_errors() as exc:
                # 412: the key exists; 409: a concurrent write to it is in flight.
                if aws.error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                    continue
                raise Unavailable("s3") from exc
            return key
        raise Unavailable("s3")


_CONDITION_FAILED = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
STATE_KEY = "export-state/personal-details.json"
"""The export state object, beside the files in the export bucket (ids and times only)."""


@dataclass(frozen=True)
class Lease:
    """A run's hold on the export state: who, the object version it wrote, and the mark
    (the newest change any earlier run exported) it started from."""

    holder: str
    version: str
    exported_through: datetime | None


class ExportStateObject:
    """The export state as one small JSON object in the export bucket::

        {"exportedThrough": "2021-10-04T21:05:12.000Z" | null,
         "holder": "<run id>" | null, "until": "<time the hold expires>" | null}

    Runs take it in turn: a run holds it (a conditional write, ``If-Match`` the version it
    read) until it has raised ``exportedThrough`` past the changes it exported, before it
    deletes their messages. A run that crashed loses the hold at ``until``. Raises
    ``Unavailable`` on S3 failures.
    """

    def __init__(self, client: S3Client, bucket: str, key: str = STATE_KEY) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key

    def acquire(self, holder: str, now: datetime, until: datetime) -> Lease | None:
        """Hold the state until ``until``; ``None`` if another run holds it now."""
        current, version = self._read()
        held_until = current.get("until")
        if current.get("holder") and isinstance(held_until, str) and parse_iso(held_until) > now:
            return None
        mark = current.get("exportedThrough")
        exported = parse_iso(mark) if isinstance(mark, str) else None
        written = self._write(
            {"exportedThrough": mark, "holder": holder, "until": iso_millis(until)}, version
        )
        return None if written is None else Lease(holder, written, exported)

    def release(self, lease: Lease, exported_through: datetime | None) -> None:
        """End the hold, recording ``exported_through``. Raises ``Unavailable`` if the hold
        was lost meanwhile (the run outlived ``until``): its messages then stay queued."""
        mark = iso_millis(exported_through) if exported_through else None
        state = {"exportedThrough": mark, "holder": None, "until": None}
        if self._write(state, lease.version) is None:
            raise Unavailable("s3:export-state (hold lost)")

    def _read(self) -> tuple[dict[str, Any], str | None]:
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=self._key)
            body = response["Body"].read()
        except _boto_errors() as exc:
            # The export's role has no s3:ListBucket, so S3 answers a missing object with
            # 403 rather than 404: both mean "no state yet" here, and the conditional
            # create below fails if the object does exist.
            if aws.error_code(exc) in ("NoSuchKey", "404", "AccessDenied", "403"):
                return {}, None
            raise Unavailable("s3:export-state") from exc
        try:
            state = json.loads(body)
        except ValueError:
            state = None
        if not isinstance(state, dict):
            log.warning("export state unreadable: starting without a mark")
            state = {}
        return state, str(response["ETag"])

    def _write(self, state: Mapping[str, Any], version: str | None) -> str | None:
        """Write if the object is still at ``version`` (absent for ``None``); the new
        version, or ``None`` if another writer came first."""
        condition = {"IfMatch": version} if version is not None else {"IfNoneMatch": "*"}
        try:
            response = self._client.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=json.dumps(state).encode(),
                ContentType="application/json",
                **condition,  # type: ignore[arg-type]
            )
        except _boto_errors() as exc:
            if aws.error_code(exc) in _CONDITION_FAILED:
                return None
            raise Unavailable("s3:export-state") from exc
        return str(response["ETag"])


class MemoryExportState:
    """``ExportStateObject``'s in-memory twin."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.version = 0

    def acquire(self, holder: str, now: datetime, until: datetime) -> Lease | None:
        if self.state.get("holder") and self.state["until"] > now:
            return None
        self.version += 1
        self.state = {**self.state, "holder": holder, "until": until}
        return Lease(holder, str(self.version), self.state.get("exportedThrough"))

    def release(self, lease: Lease, exported_through: datetime | None) -> None:
        if lease.version != str(self.version):
            raise Unavailable("export-state (hold lost)")
        self.version += 1
        self.state = {"exportedThrough": exported_through, "holder": None, "until": None}


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
