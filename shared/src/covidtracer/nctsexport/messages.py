"""The ``PersonalDataUpdates`` queue's message schema, shared by producer and consumer.

A body is versioned JSON. Version 2 carries, for each changed user, what the export needs
to write without reading the table back (issue 12: one BatchGetItem per 100 users was most
of a run)::

    {"version": 2,
     "changes": [{"userId": "…", "at": "2021-10-04T21:05:12.000Z", "seq": "1234…",
                  "record": {"userId": "…", "email": "…", …, "deleted": false}},
                 {"userId": "…", "at": "…", "seq": "…", "removed": true}]}

``at`` is the stream record's ``ApproximateCreationDateTime``, ``seq`` its SequenceNumber
(the order of one item's writes), ``record`` the export line of the new image
(``personaldetails.model.record_line``); ``removed`` marks a REMOVE (the user was deleted), so
the tombstone carries the deletion time. Version 1 (ids and times only; still accepted, and
then the export reads the item) is the same without ``seq`` and ``record``.

The record is personal data: it sits in the queue (and, for a poison message, the DLQ)
encrypted at rest as the queue is (SQS-managed SSE, like the table and the bucket), readable
only by the export's roles. Logs never carry a body. At most ``MAX_IDS_PER_MESSAGE`` changes
per message, each user once, and at most ``MAX_BODY_BYTES``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from covidtracer.personaldetails.model import UserChange, is_record, iso_millis, parse_iso

VERSION = 2
VERSIONS = (1, 2)
# DESIGN §3: bounded so a consumer's 8,500-id run is made of whole messages.
MAX_IDS_PER_MESSAGE = 500
# SQS limits: 10 entries per SendMessageBatch, 256 KiB for the whole batch (and a body).
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
MAX_BODY_BYTES = 250 * 1024
MAX_USER_ID_LENGTH = 128


class MalformedMessage(ValueError):
    """A body that is not a message of this schema (a poison message). Its text names the
    problem only, never a value (it is logged)."""


def _entry(change: UserChange) -> str:
    entry: dict[str, Any] = {"userId": change.user_id, "at": iso_millis(change.at)}
    if change.sequence:
        entry["seq"] = change.sequence
    if change.removed:
        entry["removed"] = True
    elif change.record is not None:
        entry["record"] = change.record
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


def _body(entries: Sequence[str]) -> str:
    return f'{{"version":{VERSION},"changes":[{",".join(entries)}]}}'


def encode(changes: Sequence[UserChange]) -> str:
    """One body; raises ``ValueError`` outside 1 to 500 changes or ``MAX_BODY_BYTES``."""
    if not 0 < len(changes) <= MAX_IDS_PER_MESSAGE:
        raise ValueError(f"a message carries 1 to {MAX_IDS_PER_MESSAGE} changes")
    body = _body([_entry(change) for change in changes])
    if len(body.encode()) > MAX_BODY_BYTES:
        raise ValueError(f"a message body is at most {MAX_BODY_BYTES} bytes")
    return body


def decode(body: str) -> list[UserChange]:
    """The changes in ``body``; raises ``MalformedMessage`` for anything else."""
    try:
        document = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise MalformedMessage("body is not JSON") from exc
    if not isinstance(document, dict) or document.get("version") not in VERSIONS:
        raise MalformedMessage("unknown message version")
    entries = document.get("changes")
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_IDS_PER_MESSAGE:
        raise MalformedMessage(f"changes must be a list of 1 to {MAX_IDS_PER_MESSAGE}")
    carries = document["version"] >= 2
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
        sequence, record = entry.get("seq", ""), entry.get("record")
        if not carries and ("seq" in entry or "record" in entry):
            raise MalformedMessage("a version 1 change carries no seq or record")
        if not isinstance(sequence, str) or not (sequence == "" or sequence.isdigit()):
            raise MalformedMessage("a change has no valid seq")
        if record is not None and (removed or not is_record(record, user_id)):
            raise MalformedMessage("a change has no valid record")
        changes.append(UserChange(user_id, moment, removed, sequence, record))
    return changes


def bodies(changes: Sequence[UserChange]) -> list[str]:
    """``changes`` (one per user) packed into bodies of at most 500 changes and
    ``MAX_BODY_BYTES``, in order."""
    out: list[str] = []
    entries: list[str] = []
    size = 0
    overhead = len(_body([]).encode())
    for change in changes:
        entry = _entry(change)
        length = len(entry.encode()) + 1
        if entries and (
            len(entries) == MAX_IDS_PER_MESSAGE or overhead + size + length > MAX_BODY_BYTES
        ):
            out.append(_body(entries))
            entries, size = [], 0
        entries.append(entry)
        size += length
    if entries:
        out.append(_body(entries))
    return out


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
