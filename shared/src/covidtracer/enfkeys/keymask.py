"""Exposure keys go to PostgreSQL masked, so no statement's text holds one (issue 20).

psycopg2 binds parameters into the statement's text, and PostgreSQL logs that text when the
statement fails or is cancelled — the statement timeout, a lock wait cut short, a killed
Lambda (``log_min_error_statement = error``, the default, Aurora PostgreSQL's too). A key
there is an exposure key in the database's log (DESIGN §8: no keys in logs, the database's
included).

So a statement never carries a key: an array of keys is a ``Mask.keys(...)`` parameter,
which psycopg2 writes as ``unmask_keys(<masked>, <nonce>, <fingerprint>)`` (migration 0008):
key ``i`` (from 1) XORed with the first 16 bytes of SHA-256(secret ‖ nonce ‖ int32(i)).
``secret`` is 32 random bytes the database made for itself (table ``key_mask``), read here
by a SELECT and so never in a statement's text; ``nonce`` is 16 fresh random bytes per
array, so no two arrays share a pad. Without the secret a logged array is uniformly random
bytes. Digests of an upload's keys (``Mask.digest``) are keyed with the same secret: the
keys are public once exported, and an unkeyed digest beside the logged starts and periods
would let a reader of the log confirm which keys an upload held.

The secret is read once per connection (a Lambda's one connection reads it once per
environment). ``fingerprint`` names the secret a mask was made with: a database whose
secret is not the one read (a schema migrated again under a live connection) refuses the
statement (SQLSTATE ``CTKM1``) rather than store keys nobody uploaded, and ``db`` does not
reuse that connection.

A database that has not run migration 0008 yet (a release's code is live a few seconds
before its migrations run: ``deploy.py``) gets the keys as a plain array and the digests
unkeyed, as before; its connections look for the secret again on every statement until
the migration has run.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg2.extensions import connection, cursor

KEY_LENGTH = 16
NONCE_LENGTH = 16

_secrets: weakref.WeakKeyDictionary[connection, bytes] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


@dataclass(frozen=True)
class Mask:
    """What a connection's statements send keys and their digests with; ``secret`` is
    ``None`` on a database without migration 0008."""

    secret: bytes | None

    def keys(self, keys: Sequence[bytes]) -> MaskedKeys:
        """A ``bytea[]`` parameter of ``keys`` (16 bytes each) whose text holds none."""
        if self.secret is None:
            return MaskedKeys(list(keys), None, None)
        nonce = secrets.token_bytes(NONCE_LENGTH)
        return MaskedKeys(mask(self.secret, nonce, keys), nonce, fingerprint(self.secret))

    def digest(self, digest: bytes) -> bytes:
        """``digest`` (of keys) keyed with the secret, as it is stored and compared."""
        if self.secret is None:
            return digest
        return hmac.new(self.secret, b"digest" + digest, hashlib.sha256).digest()


class MaskedKeys:
    """A psycopg2 parameter: ``unmask_keys(masked, nonce, fingerprint)``, a ``bytea[]``
    (``ISQLQuote``: psycopg2 prepares it with the connection, then quotes it)."""

    def __init__(self, keys: list[bytes], nonce: bytes | None, mark: bytes | None) -> None:
        self.keys, self.nonce, self.fingerprint = keys, nonce, mark
        self._conn: Any = None

    def __conform__(self, protocol: object) -> MaskedKeys | None:
        from psycopg2.extensions import ISQLQuote

        return self if protocol is ISQLQuote else None

    def prepare(self, conn: connection) -> None:
        self._conn = conn

    def getquoted(self) -> bytes:
        array = self._quoted(self.keys) + b"::bytea[]"
        if self.nonce is None:
            return b"(" + array + b")"
        nonce, mark = self._quoted(self.nonce), self._quoted(self.fingerprint)
        return b"unmask_keys(" + array + b", " + nonce + b", " + mark + b")"

    def _quoted(self, value: object) -> bytes:
        from psycopg2.extensions import adapt

        adapted: Any = adapt(value)
        if self._conn is not None:
            adapted.prepare(self._conn)
        return bytes(adapted.getquoted())


def of(cur: cursor) -> Mask:
    """The mask of ``cur``'s connection (reads the secret the first time)."""
    conn = cur.connection
    with _lock:
        known = _secrets.get(conn)
    if known is not None:
        return Mask(known)
    # Two statements, neither of which can fail: an error would abort the caller's
    # transaction.
    cur.execute("SELECT to_regclass('key_mask') IS NOT NULL")
    row = cur.fetchone()
    if not (row and row[0]):
        return Mask(None)
    cur.execute("SELECT secret FROM key_mask")
    row = cur.fetchone()
    if row is None:
        raise RuntimeError("key_mask has no secret: run the database migrations")
    secret = bytes(row[0])
    with _lock:
        _secrets[conn] = secret
    return Mask(secret)


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
