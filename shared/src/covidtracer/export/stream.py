"""Typed view of the DynamoDB stream events Lambda delivers for ``PersonalDetails``.

The raw event is wrapped here, at the boundary, before anything else sees it. Only keys and
times are read: the images carry personal data and the export always re-reads the current
item anyway, so an out-of-order or replayed record can never export stale data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from covidtracer.export.model import UserChange

CHANGE_EVENTS = frozenset({"INSERT", "MODIFY", "REMOVE"})


class MalformedStreamRecord(ValueError):
    """A record without the shape DynamoDB Streams guarantees (never expected)."""


@dataclass(frozen=True)
class StreamRecord:
    event_id: str
    event_name: str
    user_id: str
    created_at: datetime

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
        return cls(str(raw.get("eventID", "")), event_name, user_id, moment)

    def change(self) -> UserChange:
        return UserChange(self.user_id, self.created_at, removed=self.event_name == "REMOVE")


def records(event: Mapping[str, Any]) -> list[StreamRecord]:
    """Every record of a Lambda DynamoDB stream event, in stream order."""
    return [StreamRecord.wrap(raw) for raw in event.get("Records", [])]
