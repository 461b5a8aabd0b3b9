"""The verification contract's SQL, one named function per statement on the caller's cursor.

The code claim is this contract's own statement on the table both contracts share
(``verification_codes``): it sets ``claimed_at`` only where it is unset, exactly as
``enfkeys.db.claim_code`` does for ``POST /exposures/verify``, so whichever contract claims a
code first has it and the other finds it used.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg2.extensions import cursor

CLAIMED, USED, EXPIRED, NOT_FOUND = "claimed", "used", "expired", "not_found"


@dataclass(frozen=True)
class Claim:
    """What one claim of a code or token found: ``outcome`` and, when ``CLAIMED``, what it
    carries onward."""

    outcome: str
    report_type: int = 0
    symptom_onset: date | None = None


def _claimed(cur: cursor) -> Claim:
    """The outcome of a ``_CLAIM_CODE``-shaped statement: (report type, onset) of the row it
    claimed, and the row's state before the statement ('raced': claimable in that snapshot,
    but a concurrent request claimed it first; the caller sees it used)."""
    row = cur.fetchone()
    assert row is not None, "the statement always returns one row"
    report_type, onset, state = row
    if report_type is not None:
        return Claim(CLAIMED, int(report_type), onset)
    if state is None:
        return Claim(NOT_FOUND)
    return Claim(EXPIRED if state == "expired" else USED)


# One statement: claim the code if it is unclaimed and unexpired, and say what it was
# otherwise. The outer SELECT reads the row as it was before the UPDATE (one snapshot); a
# concurrent claim of the same code waits on the row lock and then finds claimed_at set
# (Read Committed re-checks the WHERE), claiming nothing.
_CLAIM_CODE = (
    "WITH claimed AS ("
    " UPDATE verification_codes SET claimed_at = %(now)s"
    " WHERE code_hmac = %(digest)s AND claimed_at IS NULL AND expires_at > %(now)s"
    " RETURNING report_type, symptom_onset"
    ") SELECT (SELECT report_type FROM claimed), (SELECT symptom_onset FROM claimed),"
    " (SELECT CASE WHEN claimed_at IS NOT NULL THEN 'used'"
    "  WHEN expires_at <= %(now)s THEN 'expired' ELSE 'raced' END"
    "  FROM verification_codes WHERE code_hmac = %(digest)s)"
)


def claim_code(cur: cursor, code_hmac: bytes, now: datetime) -> Claim:
    """Claim the code with this keyed hash for ``/api/verify``: ``CLAIMED`` exactly once
    for a live code across both contracts, else ``USED``, ``EXPIRED`` or ``NOT_FOUND``."""
    cur.execute(_CLAIM_CODE, {"now": now, "digest": code_hmac})
    return _claimed(cur)


def insert_token(
    cur: cursor, token_id: uuid.UUID, app: str, claim: Claim, now: datetime, expires_at: datetime
) -> None:
    cur.execute(
        "INSERT INTO verification_tokens"
        " (id, app, report_type, symptom_onset, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (str(token_id), app, claim.report_type, claim.symptom_onset, now, expires_at),
    )


# The same shape as _CLAIM_CODE, on the app's own verification tokens.
_CLAIM_VERIFICATION = (
    "WITH claimed AS ("
    " UPDATE verification_tokens SET claimed_at = %(now)s"
    " WHERE id = %(id)s AND app = %(app)s AND claimed_at IS NULL AND expires_at > %(now)s"
    " RETURNING report_type, symptom_onset"
    ") SELECT (SELECT report_type FROM claimed), (SELECT symptom_onset FROM claimed),"
    " (SELECT CASE WHEN claimed_at IS NOT NULL THEN 'used'"
    "  WHEN expires_at <= %(now)s THEN 'expired' ELSE 'raced' END"
    "  FROM verification_tokens WHERE id = %(id)s AND app = %(app)s)"
)


def claim_token(cur: cursor, token_id: uuid.UUID, app: str, now: datetime) -> Claim:
    """Claim the app's verification token for one certificate: ``CLAIMED`` once, else
    ``USED``, ``EXPIRED`` or ``NOT_FOUND`` (another app's token is not found)."""
    cur.execute(_CLAIM_VERIFICATION, {"now": now, "id": str(token_id), "app": app})
    return _claimed(cur)


def delete_tokens_created_before(cur: cursor, cutoff: datetime) -> int:
    cur.execute("DELETE FROM verification_tokens WHERE created_at < %s", (cutoff,))
    return int(cur.rowcount)
