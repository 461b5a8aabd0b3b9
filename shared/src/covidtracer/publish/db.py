"""``/v1/publish``'s SQL, one named function per statement on the caller's cursor: the keys a
publish finds already stored (locked), their revision, the certificates it accepted and the
revision tokens' wrapped data keys. New keys go in through ``enfkeys.db.insert_keys``, the
same table and rules as COVID Green's upload."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from covidtracer.enfkeys import keymask
from covidtracer.enfkeys.db import INSERT_KEYS, key_params
from covidtracer.enfkeys.model import StoredKey
from covidtracer.publish.model import StoredState

if TYPE_CHECKING:
    from psycopg2.extensions import cursor


# A publish's common case in ONE statement (one round trip, atomic by itself): none of its
# keys is stored yet and its certificate is new. Then the certificate is remembered and the
# keys stored; otherwise (a revision, a retry, a spent certificate) nothing changes and the
# caller takes the transaction of ``lock_stored_keys`` and the rest. A concurrent twin waits
# on the first's certificate row and, once it commits, conflicts: it changes nothing.
_PUBLISH_NEW = (
    "WITH existing AS (SELECT 1 FROM exposures"  # noqa: S608 - constants; values are bound
    " WHERE key_data = ANY(%(incoming)s) LIMIT 1),"
    " remembered AS (INSERT INTO publish_certificates"
    " (certificate_hash, keys_digest, inserted, created_at)"
    " SELECT %(cert)s, %(digest)s, %(inserted)s, %(now)s"
    " WHERE NOT EXISTS (SELECT 1 FROM existing)"
    " ON CONFLICT (certificate_hash) DO NOTHING RETURNING 1),"
    " stored AS (" + INSERT_KEYS + " WHERE EXISTS (SELECT 1 FROM remembered)"
    " ON CONFLICT (key_data) DO NOTHING RETURNING key_data)"
    " SELECT (SELECT count(*) FROM remembered), array(SELECT key_data FROM stored)"
)


def publish_new_keys(
    cur: cursor,
    digest: bytes,
    keys_digest: bytes,
    incoming: Sequence[bytes],
    keys: Sequence[StoredKey],
    now: datetime,
) -> list[bytes] | None:
    """Remember the certificate and store ``keys`` (those of ``incoming`` to store) if none
    of ``incoming`` is stored and the certificate is new: the keys stored (a key another
    request stored meanwhile is not among them); else ``None``, nothing changed. The
    certificate's ``inserted`` is ``len(keys)``: the caller corrects it (``set_inserted``)
    in the rare race where fewer were new."""
    mask = keymask.of(cur)
    params = {"cert": digest, "digest": mask.digest(keys_digest), "now": now, "inserted": len(keys)}
    cur.execute(_PUBLISH_NEW, {**params, "incoming": mask.keys(incoming), **key_params(cur, keys)})
    row = cur.fetchone()
    assert row is not None, "the statement always returns one row"
    return [bytes(key) for key in row[1]] if row[0] else None


def lock_stored_keys(cur: cursor, key_data: Sequence[bytes]) -> dict[bytes, StoredState]:
    """The keys among ``key_data`` already stored, locked until the transaction ends (two
    revisions of one key queue, and the second sees the first's result)."""
    cur.execute(
        "SELECT key_data, rolling_start_number, rolling_period, report_type,"
        " revised_report_type FROM exposures WHERE key_data = ANY(%(keys)s)"
        " ORDER BY key_data FOR UPDATE",
        {"keys": keymask.of(cur).keys(key_data)},
    )
    return {
        bytes(row[0]): StoredState(int(row[1]), int(row[2]), int(row[3]), row[4])
        for row in cur.fetchall()
    }


def revise_key(
    cur: cursor,
    key_data: bytes,
    report_type: int,
    days_since_onset: int,
    transmission_risk: int,
    now: datetime,
) -> bool:
    """Record a key's revision (once: a revised key is never revised again)."""
    cur.execute(
        "UPDATE exposures SET revised_report_type = %(report)s,"
        " revised_days_since_onset = %(days)s, revised_transmission_risk = %(risk)s,"
        " revised_at = %(now)s WHERE key_data = (%(key)s)[1] AND revised_at IS NULL",
        {
            "report": report_type,
            "days": days_since_onset,
            "risk": transmission_risk,
            "now": now,
            "key": keymask.of(cur).keys([key_data]),
        },
    )
    return bool(cur.rowcount)


def remember_certificate(cur: cursor, digest: bytes, keys_digest: bytes, now: datetime) -> bool:
    """Record that a publish with this certificate is being stored; False if one already
    was (a concurrent twin waits here on the first's row until it commits or rolls back)."""
    cur.execute(
        "INSERT INTO publish_certificates (certificate_hash, keys_digest, inserted, created_at)"
        " VALUES (%s, %s, 0, %s) ON CONFLICT (certificate_hash) DO NOTHING RETURNING 1",
        (digest, keymask.of(cur).digest(keys_digest), now),
    )
    return cur.fetchone() is not None


def set_inserted(cur: cursor, digest: bytes, inserted: int) -> None:
    cur.execute(
        "UPDATE publish_certificates SET inserted = %s WHERE certificate_hash = %s",
        (inserted, digest),
    )


def remembered_publish(cur: cursor, digest: bytes, keys_digest: bytes) -> int | None:
    """The keys inserted by the publish that used this certificate for these keys (digests
    compared keyed, as stored: ``keymask``); ``None`` if none did."""
    cur.execute(
        "SELECT inserted FROM publish_certificates"
        " WHERE certificate_hash = %s AND keys_digest = %s",
        (digest, keymask.of(cur).digest(keys_digest)),
    )
    row = cur.fetchone()
    return int(row[0]) if row else None


def delete_certificates_before(cur: cursor, cutoff: datetime) -> int:
    cur.execute("DELETE FROM publish_certificates WHERE created_at < %s", (cutoff,))
    return int(cur.rowcount)


def revision_keys(cur: cursor, kms_key_id: str) -> list[tuple[int, bytes]]:
    """(id, wrapped data key) of the revision-token data keys that KMS key wrapped, newest
    first (keys of a former KMS key are not read: it no longer opens them)."""
    cur.execute(
        "SELECT id, wrapped_key FROM revision_keys WHERE kms_key_id = %s ORDER BY id DESC",
        (kms_key_id,),
    )
    return [(int(row[0]), bytes(row[1])) for row in cur.fetchall()]


def insert_revision_key(cur: cursor, kms_key_id: str, wrapped: bytes, now: datetime) -> int:
    cur.execute(
        "INSERT INTO revision_keys (kms_key_id, wrapped_key, created_at) VALUES (%s, %s, %s)"
        " RETURNING id",
        (kms_key_id, wrapped, now),
    )
    row = cur.fetchone()
    assert row is not None, "INSERT … RETURNING returns its row"
    return int(row[0])
