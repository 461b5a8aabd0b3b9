"""Use cases of the export: queue the users a stream batch changed; export a run's worth.

Delivery is at-least-once end to end (DESIGN §3, §8): the stream handler fails (and Lambda
redelivers) unless every change is queued; the consumer deletes messages only after its
file is written, so a crash in between repeats users in a later file and loses none.

AWS calls per run (issue 12): the messages carry each user's export line, so a run writes
them without reading the table, except for a user whose newest change may be older than
one already exported (``model.Pending.must_read``: redelivered, delayed or replayed
messages), which it reads back strongly consistent as before. What makes that safe is the
export state (``ExportState``): runs take turns holding it, and a run raises its mark past
the changes it exported before it deletes their messages. 8,500 fresh users cost
2 receives, 2 delete batches, 1 file and 3 state calls instead of also 85 BatchGetItem
calls (8,500 read units).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from covidtracer import logs
from covidtracer.analytics.emitter import emit
from covidtracer.errors import Unavailable
from covidtracer.nctsexport import messages, model
from covidtracer.nctsexport.repository import Lease, ReceivedMessage
from covidtracer.nctsexport.stream import StreamRecord
from covidtracer.personaldetails.model import UserChange
from covidtracer.validation import camel_fields

log = logs.get_logger(__name__)


class Queue(Protocol):
    def send(self, bodies: Sequence[str]) -> None: ...
    def receive(
        self, max_messages: int, visibility_timeout: int | None, wait_seconds: int
    ) -> list[ReceivedMessage]: ...
    def delete(self, received: Sequence[ReceivedMessage]) -> int: ...
    def release(self, received: Sequence[ReceivedMessage]) -> int: ...


class Table(Protocol):
    def current(self, user_ids: Sequence[str]) -> dict[str, dict[str, object]]: ...


class Bucket(Protocol):
    def put_new(self, keys: Sequence[str], body: bytes) -> str: ...


class ExportState(Protocol):
    def acquire(self, holder: str, now: datetime, until: datetime) -> Lease | None: ...
    def release(self, lease: Lease, exported_through: datetime | None) -> None: ...


@dataclass(frozen=True)
class ExportLimits:
    """DESIGN §3's run size: 10 messages × 11 receives, at most 8,500 unique users.

    8,500 users keep a run well inside the Lambda timeout and the file a size NCTS loads in
    one go; the rest wait for the next run 5 minutes later.
    """

    max_users: int = 8_500
    max_receives: int = 11
    messages_per_receive: int = 10
    # None: the queue's own visibility timeout (300 s, longer than a run). Tests shorten it.
    visibility_timeout: int | None = None
    # Long polling asks every SQS server, so an almost empty queue is not missed.
    wait_seconds: int = 1
    # How long a run holds the export state: the queue's visibility timeout, past which
    # its messages would be redelivered to the next run anyway.
    hold_seconds: int = 300


@dataclass(frozen=True)
class ExportResult:
    key: str | None
    users: int
    messages: int
    malformed: int
    undeleted: int = 0
    tombstones: int = 0
    read: int = 0
    skipped: bool = False
    message_ids: tuple[str, ...] = field(default=(), repr=False)

    def summary(self) -> dict[str, object]:
        """The run's log line and the job's answer: every count, not the message ids."""
        return camel_fields(self, omit={"message_ids"})


@dataclass(frozen=True)
class ExportDeps:
    """The updates queue, the details table, the export bucket, the export state (``None``:
    every user is read back) and the run's size."""

    queue: Queue
    table: Table
    bucket: Bucket
    state: ExportState | None = None
    limits: ExportLimits = ExportLimits()


def publish_changes(deps: ExportDeps, records: Sequence[StreamRecord], now: datetime) -> int:
    """Queue the users changed in one stream batch; returns the number of messages.

    Raises ``Unavailable`` if SQS does not take them all (Lambda then retries the batch).
    """
    changes = model.latest_per_user(record.change() for record in records)
    bodies = messages.bodies(changes)
    if bodies:
        deps.queue.send(bodies)
    log.info("queued changed users", extra={"users": len(changes), "messages": len(bodies)})
    return len(bodies)


def export_personal_details(deps: ExportDeps, now: datetime) -> ExportResult:
    """Export the users of whole queued messages (≤ ``limits.max_users``) to one new file.

    With ``deps.state``, users whose newest change is known to be current are written from
    their message and only the others are read; without it every user is read. A run that
    finds ``state`` held by another run does nothing (``skipped``). Messages are deleted
    only after the file is written (and the state's mark raised). A malformed message is
    logged (id and error type only) and left alone: it comes back after its visibility
    timeout and SQS moves it to the DLQ after 5 receives, while every other message goes
    through. Raises ``Unavailable`` if DynamoDB, S3 or the state fails; nothing is deleted
    then.
    """
    queue, state, limits = deps.queue, deps.state, deps.limits
    lease = None
    if state is not None:
        lease = state.acquire(uuid.uuid4().hex, now, now + timedelta(seconds=limits.hold_seconds))
        if lease is None:
            log.info("personal-details export skipped: another run holds the export state")
            return ExportResult(key=None, users=0, messages=0, malformed=0, skipped=True)
    mark = lease.exported_through if lease is not None else model.READ_ALL
    released = False
    try:
        taken, malformed = _take_messages(queue, limits)
        if not taken:
            return ExportResult(key=None, users=0, messages=0, malformed=malformed)
        pending = model.merge_pending(change for _, changes in taken for change in changes)
        to_read = sorted(u for u, entry in pending.items() if entry.must_read(mark))
        items = deps.table.current(to_read) if to_read else {}
        lines = model.export_lines(pending, items, mark)
        window = model.window_start(now)
        keys = [model.export_key(window, n) for n in range(model.MAX_FILES_PER_WINDOW)]
        key = deps.bucket.put_new(keys, model.encode_jsonl(lines))
        if state is not None and lease is not None:
            # Before the deletes: a message that survives them (a failed delete) is then
            # older than the mark and is read back, never written from its stale copy.
            state.release(lease, model.exported_through(pending, lease.exported_through))
            released = True
        undeleted = queue.delete([message for message, _ in taken])
    finally:
        if state is not None and lease is not None and not released:
            _release_quietly(state, lease)
    if undeleted:
        # They come back and repeat their users in a later file: noisy, never a loss.
        log.warning("could not delete exported messages", extra={"count": undeleted})
    result = ExportResult(
        key=key,
        users=len(lines),
        messages=len(taken),
        malformed=malformed,
        undeleted=undeleted,
        tombstones=sum(1 for line in lines if line["deleted"]),
        read=len(to_read),
        message_ids=tuple(message.message_id for message, _ in taken),
    )
    log.info("exported personal details", extra=result.summary())
    emit(
        "details_export_written",
        counts={
            "users": result.users,
            "tombstones": result.tombstones,
            "messages": result.messages,
        },
        now=now,
    )
    return result


def _release_quietly(state: ExportState, lease: Lease) -> None:
    """End a hold without moving the mark (nothing was exported, or the run is failing);
    if that fails too the hold simply expires."""
    try:
        state.release(lease, lease.exported_through)
    except Unavailable as exc:
        log.warning("export state not released; the hold expires", extra={"reason": str(exc)})


def _take_messages(
    queue: Queue, limits: ExportLimits
) -> tuple[list[tuple[ReceivedMessage, list[UserChange]]], int]:
    """Receive whole messages until the next one might not fit under ``max_users``.

    A receive asks only for as many messages as are sure to fit (each holds at most 500
    users), so every received, well-formed message is exported: receives are never spent
    on messages the run then leaves, which would push healthy messages towards the DLQ.
    """
    taken: list[tuple[ReceivedMessage, list[UserChange]]] = []
    seen_messages: set[str] = set()
    users: set[str] = set()
    malformed = 0
    for _ in range(limits.max_receives):
        room = limits.max_users - len(users)
        wanted = min(limits.messages_per_receive, room // messages.MAX_IDS_PER_MESSAGE)
        if wanted <= 0:
            break
        received = queue.receive(wanted, limits.visibility_timeout, limits.wait_seconds)
        if not received:
            break
        decoded: list[tuple[ReceivedMessage, list[UserChange]]] = []
        for message in received:
            if message.message_id in seen_messages:
                continue  # redelivered within this run (a short visibility timeout)
            seen_messages.add(message.message_id)
            try:
                decoded.append((message, messages.decode(message.body)))
            except messages.MalformedMessage as exc:
                malformed += 1
                log.error(
                    "malformed personal-data update message; left for the DLQ",
                    extra={
                        "message_id": message.message_id,
                        "error_type": type(exc).__name__,
                        "reason": str(exc),
                        "receive_count": message.receive_count,
                    },
                )
        fits, users = model.take_whole_messages(
            [frozenset(c.user_id for c in changes) for _, changes in decoded],
            users,
            limits.max_users,
        )
        taken.extend(decoded[i] for i in fits)
        kept = set(fits)
        left = [message for i, (message, _) in enumerate(decoded) if i not in kept]
        if left:
            queue.release(left)
            break
    return taken, malformed
