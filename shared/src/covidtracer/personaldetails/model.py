"""The ``PersonalDetails`` item and its change record: the contract between the details API
(which writes the item) and the NCTS export (which reads its changes); no I/O here.

The ``PersonalDetails`` item contract
=====================================
The contact-details API (``PUT/PATCH/DELETE /user/details``) writes exactly these
attributes to the ``PersonalDetails`` table (key ``userId``); the export reads them back and
the NCTS Finders Service loads what the export writes, so a change here is a change to both.

=============  ====  ========  ===========================================================
attribute      type  required  value
=============  ====  ========  ===========================================================
userId         S     yes       the Cognito ``sub`` (UUID); the table's hash key
email          S     yes       trimmed, lower-cased sign-in email
firstName      S     yes       ≤ 50 chars (DESIGN §2.2 pattern)
middleName     S     no        ≤ 100 chars; omit the attribute when the person has none
lastName       S     yes       ≤ 50 chars
phone          S     no        E.164 **without spaces** (``+64210123456``); absent only when
                               the record was created by the app's first PATCH without one
dateOfBirth    S     no        ``YYYY-MM-DD``
gender         S     no        as the app sends it
ethnicity      M     no        ``{selected: L of S, other: S}`` (``other`` may be omitted)
updatedAt      S     yes       ISO-8601 UTC with milliseconds and ``Z``
                               (``2021-10-04T21:05:12.345Z``), set on every write
=============  ====  ========  ===========================================================

Optional attributes are *omitted* when empty (never stored as ``""`` or NULL). Deleting a
user deletes the item; the stream's REMOVE record is the deletion, and its
``ApproximateCreationDateTime`` is the deletion time.

The change record
=================
A change of one user's item, as the export carries it from the table's stream to its file
(``UserChange``): when, whether the item was removed, the stream's order, and for a present
user the record (``record_line``: every attribute above in ``RECORD_FIELDS`` order, ``null``
for an absent optional one, ``ethnicity`` as ``{"selected": [...], "other": "..." | null}``,
then ``"deleted": false``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from covidtracer.validation import format_utc_millis

RECORD_FIELDS = (
    "userId", "email", "firstName", "middleName", "lastName", "phone", "dateOfBirth",
    "gender", "ethnicity", "updatedAt",
)  # fmt: skip
_RECORD_KEYS = (*RECORD_FIELDS, "deleted")
_ETHNICITY_KEYS = frozenset({"selected", "other"})


@dataclass(frozen=True)
class UserChange:
    """One user's change as the stream reported it: when, whether the item was removed,
    and (from queue message version 2) the stream's order and the export line it made.

    ``sequence`` is the stream record's SequenceNumber (decimal, increasing in the order of
    the item's writes); ``record`` is ``record_line`` of the new image, ``None`` for a
    removal or where the message does not carry it (then the export reads the item).
    """

    user_id: str
    at: datetime
    removed: bool = False
    sequence: str = ""
    record: Mapping[str, Any] | None = field(default=None, compare=True, hash=False)

    @property
    def order(self) -> tuple[datetime, int]:
        """Newer changes of one item sort later: time, then the stream's sequence number."""
        return self.at, int(self.sequence) if self.sequence.isdigit() else -1

    @property
    def carries_state(self) -> bool:
        """The change says what the export should write: a record, or a removal."""
        return self.removed or self.record is not None


# ``2021-10-04T21:05:12.345Z`` — the contract's time format.
iso_millis = format_utc_millis


def parse_iso(text: str) -> datetime:
    """Inverse of ``iso_millis``; raises ``ValueError`` on anything else."""
    if not text.endswith("Z"):
        raise ValueError("time must be UTC with a Z suffix")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def record_line(item: Mapping[str, Any]) -> dict[str, Any]:
    """The export line of a present user, from the item as plain Python values."""
    line: dict[str, Any] = {name: item.get(name) for name in RECORD_FIELDS}
    ethnicity = item.get("ethnicity")
    if ethnicity is not None:
        line["ethnicity"] = {
            "selected": list(ethnicity.get("selected") or []),
            "other": ethnicity.get("other"),
        }
    line["deleted"] = False
    return line


def is_record(record: Any, user_id: str) -> bool:
    """An export line of a present user (``record_line``'s shape) for ``user_id``."""
    if not isinstance(record, dict) or tuple(record) != _RECORD_KEYS:
        return False
    if record["userId"] != user_id or record["deleted"] is not False:
        return False
    for name in RECORD_FIELDS:
        value = record[name]
        if name == "ethnicity" and value is not None:
            if not isinstance(value, dict) or set(value) != _ETHNICITY_KEYS:
                return False
            selected, other = value["selected"], value["other"]
            if not isinstance(selected, list) or not all(isinstance(v, str) for v in selected):
                return False
            if other is not None and not isinstance(other, str):
                return False
        elif value is not None and not isinstance(value, str):
            return False
    return True
