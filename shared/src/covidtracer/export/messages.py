"""The ``PersonalDataUpdates`` queue's message schema, shared by producer and consumer.

A body is versioned JSON carrying ids and times only — never personal data, so a message
parked in the DLQ or read by an operator reveals nothing about a person::

    {"version": 1,
     "changes": [{"userId": "…", "at": "2021-10-04T21:05:12.000Z"},
                 {"userId": "…", "at": "…", "removed": true}]}

``at`` is the stream record's ``ApproximateCreationDateTime``; ``removed`` marks a REMOVE
(the user was deleted), so the export's tombstone carries the deletion time. At most
``MAX_IDS_PER_MESSAGE`` changes per message, each user once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from covidtracer.export.model import UserChange, iso_millis, parse_iso

VERSION = 1
# DESIGN §3: bounded so a consumer's 8,500-id run is made of whole messages.
MAX_IDS_PER_MESSAGE = 500
# SQS limits: 10 entries per SendMessageBatch, 256 KiB for the whole batch.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
MAX_USER_ID_LENGTH = 128


class MalformedMessage(ValueError):
    """A body that is not a message of this schema (a poison message)."""


def encode(changes: Sequence[UserChange]) -> str:
    if not 0 < len(changes) <= MAX_IDS_PER_MESSAGE:
        raise ValueError(f"a message carries 1 to {MAX_IDS_PER_MESSAGE} changes")
    entries: list[dict[str, Any]] = []
    for change in changes:
        entry: dict[str, Any] = {"userId": change.user_id, "at": iso_millis(change.at)}
        if change.removed:
            entry["removed"] = True
        entries.append(entry)
    return json.dumps({"version": VERSION, "changes": entries}, separators=(",", ":"))


def decode(body: str) -> list[UserChange]:
    """The changes in ``body``; raises ``MalformedMessage`` for anything else."""
    try:
        document = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise MalformedMessage("body is not JSON") from exc
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise MalformedMessage("unknown message version")
    entries = document.get("changes")
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_IDS_PER_MESSAGE:
        raise MalformedMessage(f"changes must be a list of 1 to {MAX_IDS_PER_MESSAGE}")
    changes = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise MalformedMessage("a change is not an object")
        user_id, at, removed = entry.get("userId"), entry.get("at"), entry.get("removed", False)
        if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID_LENGTH:
            raise MalformedMessage("a change has no valid userId")
        if not isinstance(at, str) or not isinstance(removed, bool):
            raise MalformedMessage("a change has no valid time or removed flag")
        try:
            moment = parse_iso(at)
        except ValueError as exc:
            raise MalformedMessage("a change has no valid time") from exc
        changes.append(UserChange(user_id, moment, removed))
    return changes


def bodies(changes: Sequence[UserChange]) -> list[str]:
    """``changes`` (one per user) packed into message bodies of at most 500 changes."""
    return [
        encode(changes[start : start + MAX_IDS_PER_MESSAGE])
        for start in range(0, len(changes), MAX_IDS_PER_MESSAGE)
    ]


def send_batches(message_bodies: Sequence[str]) -> Iterator[list[str]]:
    """Group bodies into SendMessageBatch calls within SQS's entry and size limits."""
    batch: list[str] = []
    size = 0
    for body in message_bodies:
        length = len(body.encode())
        if batch and (len(batch) == MAX_BATCH_ENTRIES or size + length > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += length
    if batch:
        yield batch
