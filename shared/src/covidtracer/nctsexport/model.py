"""Pure rules of the NCTS personal-details export (DESIGN §3); no I/O here.

It reads the ``PersonalDetails`` items and changes ``covidtracer.personaldetails.model``
defines, and writes them as NCTS's Finders Service loads them.

The export file (one JSON object per line, UTF-8, ``\\n`` after every line)
==========================================================================
A present user::

    {"userId","email","firstName","middleName","lastName","phone","dateOfBirth",
     "gender","ethnicity","updatedAt","deleted":false}

Every key is always there, in this order; an absent optional attribute is ``null``
(``ethnicity`` is ``{"selected": [...], "other": "..." | null}`` or ``null``), so NCTS can
tell "cleared" from "not sent". A user whose item no longer exists is a tombstone::

    {"userId","updatedAt","deleted":true}

whose ``updatedAt`` is the deletion time from the stream. One file holds each user at most
once, with the record as read at export time (so the newest data); lines are sorted by
``userId`` so a run is reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from covidtracer.personaldetails.model import UserChange, iso_millis, record_line

# A 5-minute schedule names each file after the window it ran in.
WINDOW = timedelta(minutes=5)
KEY_PREFIX = "personal-details"
# Files per window before a run gives up: a window normally sees one run; 100 means
# something is re-running in a loop and an operator should look.
MAX_FILES_PER_WINDOW = 100


@dataclass(frozen=True)
class Pending:
    """What a run knows about one user from the messages it took."""

    user_id: str
    last_change: datetime
    last_removal: datetime | None
    newest: UserChange | None = field(default=None, compare=False)

    @property
    def tombstone_time(self) -> datetime:
        """The deletion time, or the newest change seen if the REMOVE is still queued."""
        return self.last_removal or self.last_change

    def must_read(self, exported_through: datetime | None) -> bool:
        """Whether the export must read the item instead of writing the newest change.

        The newest change is the user's current state unless a newer one was already
        exported by an earlier run (a message redelivered, delayed or replayed from the
        DLQ). Any such newer change is no older than this one (one item's stream records
        come in write order) and no newer than ``exported_through``, the newest change any
        earlier run exported (``None``: none ever was): so a change after it is current,
        and one at or before it is read (strongly consistent), as are changes that carry
        no state (version 1). `READ_ALL` reads every user (no export state kept).
        """
        newest = self.newest
        if newest is None or not newest.carries_state:
            return True
        return exported_through is not None and newest.at <= exported_through


READ_ALL = datetime.max.replace(tzinfo=UTC)
"""An ``exported_through`` that makes every user's item be read back."""


def latest_per_user(changes: Iterable[UserChange]) -> list[UserChange]:
    """One change per user (first-seen order): the newest, removal kept only if it is last.

    A batch that removes then re-creates a user yields a non-removal: the item exists again.
    """
    latest: dict[str, UserChange] = {}
    for change in changes:
        seen = latest.get(change.user_id)
        if seen is None or change.order >= seen.order:
            latest[change.user_id] = change
    return list(latest.values())


def merge_pending(changes: Iterable[UserChange]) -> dict[str, Pending]:
    """Fold the changes of every message a run took into one entry per user."""
    pending: dict[str, Pending] = {}
    for change in changes:
        seen = pending.get(change.user_id)
        last_change = change.at if seen is None else max(seen.last_change, change.at)
        last_removal = None if seen is None else seen.last_removal
        if change.removed and (last_removal is None or change.at > last_removal):
            last_removal = change.at
        newest = seen.newest if seen is not None else None
        if newest is None or change.order >= newest.order:
            newest = change
        pending[change.user_id] = Pending(change.user_id, last_change, last_removal, newest)
    return pending


def exported_through(pending: Mapping[str, Pending], before: datetime | None) -> datetime | None:
    """The export state's new mark once these users are exported: the newest change any
    run has exported (``before`` is the mark the run started from)."""
    times = [p.newest.at for p in pending.values() if p.newest is not None]
    if before is not None:
        times.append(before)
    return max(times, default=None)


def take_whole_messages(
    id_sets: Sequence[frozenset[str]], already: set[str], limit: int
) -> tuple[list[int], set[str]]:
    """Indexes of the messages a run takes, in order, without passing ``limit`` unique ids.

    Whole messages only: a message is deleted after the file is written, so a message whose
    ids were only partly exported would lose the rest. A message that does not fit is left
    for the next run. Returns the taken indexes and the grown set of ids.
    """
    taken: list[int] = []
    ids = set(already)
    for index, message_ids in enumerate(id_sets):
        if len(ids | message_ids) <= limit:
            taken.append(index)
            ids |= message_ids
    return taken, ids


def tombstone_line(user_id: str, deleted_at: datetime) -> dict[str, Any]:
    return {"userId": user_id, "updatedAt": iso_millis(deleted_at), "deleted": True}


def export_lines(
    pending: Mapping[str, Pending],
    items: Mapping[str, Mapping[str, Any]],
    exported_through: datetime | None = None,
) -> list[dict[str, Any]]:
    """One line per pending user, sorted by ``userId``: the newest change's state where it
    is known to be current (``Pending.must_read``), else the item read now (``items``, the
    users ``must_read`` named), and a tombstone for a user with neither."""
    lines = []
    for user_id in sorted(pending):
        entry = pending[user_id]
        newest = entry.newest
        if newest is not None and not entry.must_read(exported_through):
            if newest.removed:
                lines.append(tombstone_line(user_id, newest.at))
            else:
                assert newest.record is not None, "a change that carries state"
                lines.append(dict(newest.record))
            continue
        item = items.get(user_id)
        if item is None:
            lines.append(tombstone_line(user_id, entry.tombstone_time))
        else:
            lines.append(record_line(item))
    return lines


def encode_jsonl(lines: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        for line in lines
    )


def window_start(now: datetime) -> datetime:
    """The start of the 5-minute window ``now`` falls in (UTC)."""
    utc = now.astimezone(UTC)
    return utc.replace(minute=utc.minute - utc.minute % 5, second=0, microsecond=0)


def export_key(window: datetime, attempt: int) -> str:
    """``personal-details/YYYY/MM/DD/personal-details-YYYYMMDDTHHMMZ[-N].jsonl``.

    ``attempt`` 0 is the window's first file; the N-th further file of the same window is
    ``-N`` (a re-run, or a backlog drained by an extra run), so no file is ever replaced.
    """
    suffix = f"-{attempt}" if attempt else ""
    stamp = window.strftime("%Y%m%dT%H%MZ")
    return f"{KEY_PREFIX}/{window:%Y/%m/%d}/{KEY_PREFIX}-{stamp}{suffix}.jsonl"
