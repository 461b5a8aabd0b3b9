"""The ENF API's SQL: one named function per statement, each run on the caller's cursor.

Callers open the transaction (``covidtracer.db.transaction``) so a use case's statements
commit or roll back together; concurrency is settled in SQL (``UPDATE … WHERE claimed_at IS
NULL RETURNING``, ``ON CONFLICT``), never by reading and then writing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from covidtracer.enfkeys import keymask
from covidtracer.enfkeys.model import MAX_ROLLING_PERIOD, REVOKED, ExposureKey, StoredKey

if TYPE_CHECKING:
    from psycopg2.extensions import cursor


@dataclass(frozen=True)
class VerifyState:
    """A registration's own history of wrong codes (its guessing allowance)."""

    last_failure_at: datetime | None
    failure_day: date | None
    failures: int  # on ``failure_day``
    failures_since_success: int


@dataclass(frozen=True)
class Claimed:
    """What a claimed code or upload token carries onward."""

    symptom_onset: date
    report_type: int
    expires_at: datetime
    code_id: int | None = None  # the claimed code's row: its upload token points back to it


@dataclass(frozen=True)
class IssuedToken:
    """The upload token a registration was given for a code it claimed."""

    token: uuid.UUID
    expires_at: datetime


# ---------------------------------------------------------------------------- registrations


def insert_registration(cur: cursor, registration_id: uuid.UUID, nonce: str, now: datetime) -> None:
    cur.execute(
        "INSERT INTO registrations (id, nonce, created_at) VALUES (%s, %s, %s)",
        (str(registration_id), nonce, now),
    )


def pending_registration(cur: cursor, nonce: str, issued_after: datetime) -> uuid.UUID | None:
    """The unattested registration holding ``nonce``, if it was issued after the cut-off."""
    cur.execute(
        "SELECT id FROM registrations WHERE nonce = %s AND verified_at IS NULL AND created_at > %s",
        (nonce, issued_after),
    )
    row = cur.fetchone()
    return uuid.UUID(str(row[0])) if row else None


def complete_registration(
    cur: cursor, registration_id: uuid.UUID, nonce: str, refresh_hash: bytes, now: datetime
) -> bool:
    """Mark the device attested; False if another request completed it first."""
    cur.execute(
        "UPDATE registrations"
        " SET nonce = NULL, verified_at = %s, refresh_hash = %s, refreshed_at = %s"
        " WHERE id = %s AND nonce = %s AND verified_at IS NULL RETURNING id",
        (now, refresh_hash, now, str(registration_id), nonce),
    )
    return cur.fetchone() is not None


def registration_exists(cur: cursor, registration_id: uuid.UUID) -> bool:
    cur.execute(
        "SELECT 1 FROM registrations WHERE id = %s AND verified_at IS NOT NULL",
        (str(registration_id),),
    )
    return cur.fetchone() is not None


def touch_refresh(
    cur: cursor, registration_id: uuid.UUID, refresh_hash: bytes, now: datetime
) -> bool:
    """Record a refresh; False if the registration is gone or the refresh token is stale."""
    cur.execute(
        "UPDATE registrations SET refreshed_at = %s"
        " WHERE id = %s AND refresh_hash = %s AND verified_at IS NOT NULL RETURNING id",
        (now, str(registration_id), refresh_hash),
    )
    return cur.fetchone() is not None


def delete_registration(cur: cursor, registration_id: uuid.UUID) -> bool:
    cur.execute("DELETE FROM registrations WHERE id = %s", (str(registration_id),))
    return bool(cur.rowcount)


def lock_verify_state(cur: cursor, registration_id: uuid.UUID) -> VerifyState | None:
    """The registration's code-guessing record, locked until the transaction ends (its
    concurrent verifies queue here, so a repeat finds the first one's claim)."""
    cur.execute(
        "SELECT last_verify_at, verify_failure_day, verify_failures, verify_failures_since_success"
        " FROM registrations WHERE id = %s AND verified_at IS NOT NULL FOR UPDATE",
        (str(registration_id),),
    )
    row = cur.fetchone()
    return VerifyState(row[0], row[1], int(row[2]), int(row[3])) if row else None


def record_verify_failure(
    cur: cursor, registration_id: uuid.UUID, now: datetime, failure_day: date, failures: int
) -> None:
    """A wrong code: ``last_verify_at`` is when the registration last gave one."""
    cur.execute(
        "UPDATE registrations SET last_verify_at = %s, verify_failure_day = %s,"
        " verify_failures = %s, verify_failures_since_success = verify_failures_since_success + 1"
        " WHERE id = %s",
        (now, failure_day, failures, str(registration_id)),
    )


def record_verify_success(cur: cursor, registration_id: uuid.UUID) -> None:
    cur.execute(
        "UPDATE registrations SET verify_failures_since_success = 0 WHERE id = %s",
        (str(registration_id),),
    )


# ---------------------------------------------------------------------------- codes and tokens


def insert_code(
    cur: cursor,
    code_hmac: bytes,
    symptom_onset: date,
    report_type: int,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """Store a code's keyed hash; False if an identical code already exists (draw again)."""
    cur.execute(
        "INSERT INTO verification_codes"
        " (code_hmac, symptom_onset, report_type, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (code_hmac) DO NOTHING RETURNING id",
        (code_hmac, symptom_onset, report_type, now, expires_at),
    )
    return cur.fetchone() is not None


def claim_code(cur: cursor, code_hmac: bytes, now: datetime) -> Claimed | None:
    """Claim an unexpired, unclaimed code: exactly one caller ever gets it."""
    cur.execute(
        "UPDATE verification_codes SET claimed_at = %s"
        " WHERE code_hmac = %s AND claimed_at IS NULL AND expires_at > %s"
        " RETURNING symptom_onset, report_type, expires_at, id",
        (now, code_hmac, now),
    )
    row = cur.fetchone()
    return Claimed(row[0], int(row[1]), row[2], int(row[3])) if row else None


def issued_token(cur: cursor, code_hmac: bytes, registration_id: uuid.UUID) -> IssuedToken | None:
    """The upload token ``registration_id`` got when it claimed the code, if it did."""
    cur.execute(
        "SELECT t.id, t.expires_at FROM verification_codes AS c"
        " JOIN upload_tokens AS t ON t.code_id = c.id"
        " WHERE c.code_hmac = %s AND t.registration_id = %s",
        (code_hmac, str(registration_id)),
    )
    row = cur.fetchone()
    return IssuedToken(uuid.UUID(str(row[0])), row[1]) if row else None


def code_expired_unclaimed(cur: cursor, code_hmac: bytes, now: datetime) -> bool:
    cur.execute(
        "SELECT 1 FROM verification_codes"
        " WHERE code_hmac = %s AND claimed_at IS NULL AND expires_at <= %s",
        (code_hmac, now),
    )
    return cur.fetchone() is not None


def insert_upload_token(
    cur: cursor,
    token: uuid.UUID,
    registration_id: uuid.UUID,
    claimed: Claimed,
    now: datetime,
    expires_at: datetime,
) -> None:
    cur.execute(
        "INSERT INTO upload_tokens"
        " (id, registration_id, symptom_onset, report_type, created_at, expires_at, code_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            str(token),
            str(registration_id),
            claimed.symptom_onset,
            claimed.report_type,
            now,
            expires_at,
            claimed.code_id,
        ),
    )


INTERVALS_PER_DAY = MAX_ROLLING_PERIOD  # a day's intervals: the statement's ``per_day``

# The upload's hot path as ONE statement (one round trip in autocommit, atomic by itself):
# claim the token, then insert the keys that ``model.keys_to_store`` keeps, with its days
# since onset. That rule is restated here in day numbers (days since 1970-01-01, UTC): a key
# started on day ``rolling_start_number / 144`` and is kept when that day less the onset
# day is one of the infectious days. An integration test holds the two to the same answers.
# Nothing is claimed (and so nothing inserted) unless the token is unused and unexpired.
_CLAIM_AND_INSERT = (
    "WITH claimed AS ("
    " UPDATE upload_tokens SET claimed_at = %(now)s, upload_digest = %(digest)s"
    " WHERE id = %(token)s AND registration_id = %(registration)s"
    " AND claimed_at IS NULL AND expires_at > %(now)s"
    " RETURNING symptom_onset - DATE '1970-01-01' AS onset_day, report_type"
    "), stored AS ("
    " INSERT INTO exposures (key_data, rolling_start_number, rolling_period,"
    " transmission_risk_level, report_type, days_since_onset, created_at)"
    " SELECT u.k, u.s, u.p, u.t, c.report_type, u.s / %(per_day)s - c.onset_day, %(now)s"
    " FROM claimed AS c, unnest(%(keys)s, %(starts)s::integer[],"
    " %(periods)s::integer[], %(risks)s::smallint[]) AS u(k, s, p, t)"
    " WHERE u.s / %(per_day)s - c.onset_day = ANY(%(infectious)s::integer[])"
    # A negative code's upload claims its token and stores nothing (a negative report only
    # revokes keys already published, through Google's /v1/publish).
    " AND c.report_type <> %(revoked)s"
    " ON CONFLICT (key_data) DO NOTHING RETURNING 1"
    ") SELECT (SELECT count(*) FROM claimed), (SELECT count(*) FROM stored)"
)


def claim_and_insert_keys(
    cur: cursor,
    token: uuid.UUID,
    registration_id: uuid.UUID,
    keys: Sequence[ExposureKey],
    now: datetime,
    *,
    infectious_days: frozenset[int],
    digest: bytes | None = None,
) -> int | None:
    """Claim the registration's unused, unexpired upload token and store its keys, in one
    statement; ``None`` when there was no such token (nothing changed: see
    ``upload_token_state``), else the number of new keys (a key already stored is ignored).

    Concurrent claims queue on the token's row lock; after the winner commits the others
    find ``claimed_at`` set and claim (and insert) nothing. The keys and the digest go
    masked and keyed (``keymask``).
    """
    mask = keymask.of(cur)
    cur.execute(
        _CLAIM_AND_INSERT,
        {
            "now": now,
            "digest": None if digest is None else mask.digest(digest),
            "token": str(token),
            "registration": str(registration_id),
            "per_day": INTERVALS_PER_DAY,
            "infectious": sorted(infectious_days),
            "revoked": REVOKED,
            "starts": [k.rolling_start_number for k in keys],
            "periods": [k.rolling_period for k in keys],
            "risks": [k.transmission_risk_level for k in keys],
            "keys": mask.keys([k.key_data for k in keys]),
        },
    )
    row = cur.fetchone()
    assert row is not None, "the statement always returns one row"
    return int(row[1]) if row[0] else None


def upload_token_state(
    cur: cursor, token: uuid.UUID, registration_id: uuid.UUID
) -> tuple[bool, datetime] | None:
    """(already claimed, expires at) of the registration's upload token, if it has it."""
    cur.execute(
        "SELECT claimed_at IS NOT NULL, expires_at FROM upload_tokens"
        " WHERE id = %s AND registration_id = %s",
        (str(token), str(registration_id)),
    )
    row = cur.fetchone()
    return (bool(row[0]), row[1]) if row else None


def claimed_by_upload(
    cur: cursor, token: uuid.UUID, registration_id: uuid.UUID, digest: bytes
) -> bool:
    """Whether the registration's token was claimed by an upload of exactly these keys."""
    cur.execute(
        "SELECT 1 FROM upload_tokens WHERE id = %s AND registration_id = %s"
        " AND claimed_at IS NOT NULL AND upload_digest = %s",
        (str(token), str(registration_id), keymask.of(cur).digest(digest)),
    )
    return cur.fetchone() is not None


# ---------------------------------------------------------------------------- rate limits, metrics


def take_action(
    cur: cursor, registration_id: uuid.UUID, action: str, now: datetime, not_since: datetime
) -> bool:
    """Record ``action`` unless the registration did it after ``not_since``; True if recorded."""
    cur.execute(
        "INSERT INTO registration_actions (registration_id, action, last_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (registration_id, action) DO UPDATE SET last_at = EXCLUDED.last_at"
        " WHERE registration_actions.last_at <= %s RETURNING 1",
        (str(registration_id), action, now, not_since),
    )
    return cur.fetchone() is not None


class SqlCounters:
    """Rate-limit counters (``covidtracer.ratelimit``'s port) in the ``rate_limits`` table,
    on the caller's cursor: a count commits or rolls back with the use case's transaction,
    so a request that fails is never counted."""

    def __init__(self, cur: cursor) -> None:
        self._cur = cur

    def hit(self, bucket: str, expires_at: int) -> int:
        self._cur.execute(
            "INSERT INTO rate_limits (bucket, hits, expires_at)"
            " VALUES (%s, 1, to_timestamp(%s))"
            " ON CONFLICT (bucket) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits",
            (bucket, expires_at),
        )
        row = self._cur.fetchone()
        assert row is not None, "an upsert with RETURNING always returns its row"
        return int(row[0])

    def release(self, bucket: str) -> None:
        self._cur.execute("UPDATE rate_limits SET hits = hits - 1 WHERE bucket = %s", (bucket,))


def live_counts(cur: cursor, buckets: Sequence[str], now: datetime) -> dict[str, int]:
    """The hits of those ``buckets`` whose window has not ended (absent ones are 0)."""
    cur.execute(
        "SELECT bucket, hits FROM rate_limits WHERE bucket = ANY(%s) AND expires_at > %s",
        (list(buckets), now),
    )
    return {str(bucket): int(hits) for bucket, hits in cur.fetchall()}


def guard_until(cur: cursor, name: str, now: datetime) -> datetime | None:
    """When the guard ``name`` ends, if it is up."""
    cur.execute(
        "SELECT expires_at FROM rate_limits WHERE bucket = %s AND expires_at > %s", (name, now)
    )
    row = cur.fetchone()
    return row[0] if row else None


def raise_guard(cur: cursor, name: str, until: datetime) -> None:
    """Put the guard ``name`` up until ``until`` (a guard already up longer stays so)."""
    cur.execute(
        "INSERT INTO rate_limits (bucket, hits, expires_at) VALUES (%s, 1, %s)"
        " ON CONFLICT (bucket) DO UPDATE"
        " SET expires_at = GREATEST(rate_limits.expires_at, EXCLUDED.expires_at)",
        (name, until),
    )


def delete_rate_limits_ended_before(cur: cursor, now: datetime) -> int:
    cur.execute("DELETE FROM rate_limits WHERE expires_at < %s", (now,))
    return int(cur.rowcount)


def count_metric(cur: cursor, day: date, event: str, os: str, version: str) -> None:
    cur.execute(
        "INSERT INTO metrics (day, event, os, version, value) VALUES (%s, %s, %s, %s, 1)"
        " ON CONFLICT (day, event, os, version) DO UPDATE SET value = metrics.value + 1",
        (day, event, os, version),
    )


# ---------------------------------------------------------------------------- retention


def delete_keys_created_before(cur: cursor, cutoff: datetime) -> int:
    cur.execute("DELETE FROM exposures WHERE created_at < %s", (cutoff,))
    return int(cur.rowcount)


def delete_codes_created_before(cur: cursor, cutoff: datetime) -> int:
    cur.execute("DELETE FROM verification_codes WHERE created_at < %s", (cutoff,))
    return int(cur.rowcount)


def delete_upload_tokens_created_before(cur: cursor, cutoff: datetime) -> int:
    cur.execute("DELETE FROM upload_tokens WHERE created_at < %s", (cutoff,))
    return int(cur.rowcount)


def delete_pending_registrations_before(cur: cursor, cutoff: datetime) -> int:
    """Nonces never attested (the phone gave up or failed attestation)."""
    cur.execute(
        "DELETE FROM registrations WHERE verified_at IS NULL AND created_at < %s", (cutoff,)
    )
    return int(cur.rowcount)


def delete_idle_registrations_before(cur: cursor, cutoff: datetime) -> int:
    """Registrations whose refresh token has not been used since ``cutoff``."""
    cur.execute(
        "DELETE FROM registrations WHERE verified_at IS NOT NULL AND refreshed_at < %s",
        (cutoff,),
    )
    return int(cur.rowcount)


# ------------------------------------------------------------------ keys of other contracts


# Keys another contract validated (Google's /v1/publish), as INSERT … SELECT over unnested
# arrays (``key_params``), ready for an ON CONFLICT clause or a further WHERE.
INSERT_KEYS = (
    "INSERT INTO exposures (key_data, rolling_start_number, rolling_period,"
    " transmission_risk_level, report_type, days_since_onset, created_at)"
    " SELECT u.k, u.s, u.p, u.t, u.r, u.d, %(now)s FROM unnest(%(keys)s,"
    " %(starts)s::integer[], %(periods)s::integer[], %(risks)s::smallint[],"
    " %(reports)s::smallint[], %(days)s::smallint[]) AS u(k, s, p, t, r, d)"
)


def key_params(cur: cursor, keys: Sequence[StoredKey]) -> dict[str, Any]:
    """``INSERT_KEYS``' arrays for ``keys`` (theirs masked: ``keymask``)."""
    return {
        "keys": keymask.of(cur).keys([k.key_data for k in keys]),
        "starts": [k.rolling_start_number for k in keys],
        "periods": [k.rolling_period for k in keys],
        "risks": [k.transmission_risk_level for k in keys],
        "reports": [k.report_type for k in keys],
        "days": [k.days_since_onset for k in keys],
    }


def insert_keys(cur: cursor, keys: Sequence[StoredKey], now: datetime) -> list[bytes]:
    """Store keys that another contract validated, in one statement; a key already stored
    is left as it was. Returns the key bytes that were new."""
    cur.execute(
        INSERT_KEYS + " ON CONFLICT (key_data) DO NOTHING RETURNING key_data",
        {"now": now, **key_params(cur, keys)},
    )
    return [bytes(row[0]) for row in cur.fetchall()]
