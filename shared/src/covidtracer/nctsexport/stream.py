"""Typed view of the DynamoDB stream events Lambda delivers for ``PersonalDetails``.

The raw event is wrapped here, at the boundary, before anything else sees it. Besides the
key and time it keeps the record's SequenceNumber and, of the new image, only what the
export writes (``personaldetails.model.record_line``): the queue carries it to the export,
which writes it unless a newer change may already have been exported
(``model.Pending.must_read``), so an out-of-order or replayed record never exports stale data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from covidtracer.logs import get_logger
from covidtracer.personaldetails.model import UserChange, is_record, record_line

log = get_logger(__name__)

CHANGE_EVENTS = frozenset({"INSERT", "MODIFY", "REMOVE"})


class MalformedStreamRecord(ValueError):
    """A record without the shape DynamoDB Streams guarantees (never expected)."""


@dataclass(frozen=True)
class StreamRecord:
    event_id: str
    event_name: str
    user_id: str
    created_at: datetime
    sequence: str = ""
    # The export line of the new image (INSERT, MODIFY); None for a REMOVE or no image.
    record: Mapping[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def wrap(cls, raw: Mapping[str, Any]) -> StreamRecord:
        """Raises ``MalformedStreamRecord`` if a field the export needs is missing."""
        try:
            dynamodb = raw["dynamodb"]
            user_id = dynamodb["Keys"]["userId"]["S"]
            created = dynamodb["ApproximateCreationDateTime"]
            event_name = raw["eventName"]
            # Lambda sends epoch seconds; accept a datetime too (the Streams API's own form).
            if isinstance(created, datetime):
                moment = created.astimezone(UTC)
            else:
                moment = datetime.fromtimestamp(float(created), UTC)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedStreamRecord(f"stream record {raw.get('eventID')!r}") from exc
        if event_name not in CHANGE_EVENTS or not isinstance(user_id, str) or not user_id:
            raise MalformedStreamRecord(f"stream record {raw.get('eventID')!r}")
        sequence = dynamodb.get("SequenceNumber", "")
        if not isinstance(sequence, str) or not (sequence == "" or sequence.isdigit()):
            raise MalformedStreamRecord(f"stream record {raw.get('eventID')!r}")
        image = dynamodb.get("NewImage")
        record = None
        if event_name != "REMOVE" and isinstance(image, Mapping):
            line = record_line(_plain(image))
            # An item outside the contract is carried by id only: the export reads it.
            record = line if is_record(line, user_id) else None
        return cls(str(raw.get("eventID", "")), event_name, user_id, moment, sequence, record)

    def change(self) -> UserChange:
        removed = self.event_name == "REMOVE"
        return UserChange(self.user_id, self.created_at, removed, self.sequence, self.record)


def _plain(image: Mapping[str, Any]) -> dict[str, Any]:
    """A stream image (DynamoDB-typed JSON) as plain Python values."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    try:
        return {name: deserializer.deserialize(value) for name, value in image.items()}
    except (TypeError, ValueError, AttributeError) as exc:
        raise MalformedStreamRecord("stream image") from exc


def records(event: Mapping[str, Any]) -> list[StreamRecord]:
    """Every record of a Lambda DynamoDB stream event, in stream order."""
    return [StreamRecord.wrap(raw) for raw in event.get("Records", [])]


@dataclass(frozen=True)
class StreamBatch:
    """A Lambda stream batch up to its first malformed record, never past it (a later change
    of the same user must not overtake one not yet queued), and that record's sequence number.

    The mapping reports batch item failures: Lambda checkpoints before the reported record and
    retries from it; once the mapping's retries are spent it sends the batch's description to
    the on-failure destination and goes on (infra: ``tracerstack.package``).
    """

    records: list[StreamRecord]
    failed_sequence: str | None = None

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response for a stream event source."""
        failed = [{"itemIdentifier": self.failed_sequence}] if self.failed_sequence else []
        return {"batchItemFailures": failed}


def batch(event: Mapping[str, Any]) -> StreamBatch:
    """The records of ``event`` before its first malformed one (see ``StreamBatch``).

    Raises ``MalformedStreamRecord`` for a malformed record with no sequence number to report:
    the whole batch then fails and the mapping bisects it down to that record.
    """
    wrapped: list[StreamRecord] = []
    for raw in event.get("Records", []):
        try:
            wrapped.append(StreamRecord.wrap(raw))
        except MalformedStreamRecord:
            dynamodb = raw.get("dynamodb")
            sequence = dynamodb.get("SequenceNumber") if isinstance(dynamodb, Mapping) else None
            if not (isinstance(sequence, str) and sequence.isdigit()):
                raise
            log.warning("malformed stream record", extra={"event_id": raw.get("eventID")})
            return StreamBatch(wrapped, sequence)
    return StreamBatch(wrapped)
