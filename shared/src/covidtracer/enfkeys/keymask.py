"""Exposure keys go to PostgreSQL masked, so no statement's text holds one (issue 20).

psycopg2 binds parameters into the statement's text, and PostgreSQL logs that text when the
statement fails or is cancelled — the statement timeout, a lock wait cut short, a killed
Lambda (``log_min_error_statement = error``, the default, Aurora PostgreSQL's too). A key
there is an exposure key in the database's log (DESIGN §8: no keys in logs, the database's
included).

So a statement never carries a key: each array of keys goes as the keys XORed with a
one-time pad, and the statement unmasks them with ``unmask_keys(masked, nonce, fingerprint)``
(migration 0008). Key ``i`` (from 1) is XORed with the first 16 bytes of
SHA-256(secret ‖ nonce ‖ int32(i)): ``secret`` is 32 random bytes the database made for
itself (table ``key_mask``), read here by a SELECT and so never in a statement's text;
``nonce`` is 16 fresh random bytes per array, so no two arrays share a pad. Without the
secret a logged array is uniformly random bytes.

The secret is read once per connection (a Lambda's one connection reads it once per
environment). ``fingerprint`` names the secret a mask was made with: a database whose
secret is not the one read (a schema migrated again under a live connection) refuses the
statement (SQLSTATE ``CTKM1``) rather than store keys nobody uploaded, and ``db`` does not
reuse that connection.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg2.extensions import connection, cursor

KEY_LENGTH = 16
NONCE_LENGTH = 16

_secrets: weakref.WeakKeyDictionary[connection, bytes] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def unmasked(name: str) -> str:
    """The SQL expression of the keys in parameter ``name`` (a ``bytea[]``), as
    ``masked_params(cur, name, keys)`` passes them."""
    return f"unmask_keys(%({name})s::bytea[], %({name}_nonce)s, %({name}_mask)s)"


def masked_params(cur: cursor, name: str, keys: Sequence[bytes]) -> dict[str, Any]:
    """The parameters ``unmasked(name)`` reads, for ``keys`` (16 bytes each)."""
    secret = _secret(cur)
    nonce = secrets.token_bytes(NONCE_LENGTH)
    return {
        name: mask(secret, nonce, keys),
        f"{name}_nonce": nonce,
        f"{name}_mask": fingerprint(secret),
    }


def mask(secret: bytes, nonce: bytes, keys: Sequence[bytes]) -> list[bytes]:
    """``keys`` XOR their pads (self-inverse: masking the result again gives the keys)."""
    masked = []
    for i, key in enumerate(keys, start=1):
        if len(key) != KEY_LENGTH:
            raise ValueError(f"an exposure key is {KEY_LENGTH} bytes, got {len(key)}")
        pad = hashlib.sha256(secret + nonce + i.to_bytes(4)).digest()[:KEY_LENGTH]
        masked.append((int.from_bytes(key) ^ int.from_bytes(pad)).to_bytes(KEY_LENGTH))
    return masked


def fingerprint(secret: bytes) -> bytes:
    return hashlib.sha256(b"fingerprint" + secret).digest()[:8]


def _secret(cur: cursor) -> bytes:
    conn = cur.connection
    with _lock:
        known = _secrets.get(conn)
    if known is not None:
        return known
    cur.execute("SELECT secret FROM key_mask")
    row = cur.fetchone()
    if row is None:
        raise RuntimeError("key_mask has no secret: run the database migrations")
    secret = bytes(row[0])
    with _lock:
        _secrets[conn] = secret
    return secret
