"""The revision tokens' data keys: AES-256 keys stored in ``revision_keys`` only wrapped by a
KMS key (``Encrypt``/``Decrypt`` with an encryption context; each row names its KMS key, and
only the configured key's rows are read), unwrapped on first use and
kept ``cache_seconds`` (Google: internal/revision/revision.go's cache of unwrapped keys).
The newest seals new tokens; every one still listed opens old ones. When there is none yet,
the first publish makes one (as Google bootstraps its first key)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from covidtracer import aws, db
from covidtracer.errors import Unavailable
from covidtracer.logs import get_logger
from covidtracer.publish import db as sql
from covidtracer.settings import DatabaseSettings

DATA_KEY_BYTES = 32
log = get_logger(__name__)
_CONTEXT = {"purpose": "covidtracer-enf-revision-token"}
# KMS's answers for a ciphertext that its key will never open again (not an outage).
_NOT_UNWRAPPABLE = frozenset(
    {"InvalidCiphertextException", "IncorrectKeyException", "NotFoundException",
     "DisabledException", "KMSInvalidStateException"}
)  # fmt: skip


class RevisionKeyring:
    def __init__(
        self,
        database: DatabaseSettings,
        kms_key_id: str,
        cache_seconds: int,
        *,
        kms: Callable[[], Any] = aws.kms,
        clock: Callable[[], float] = time.monotonic,
        new_key: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._database = database
        self._kms_key_id = kms_key_id
        self._cache_seconds = cache_seconds
        self._kms = kms
        self._clock = clock
        self._new_key = new_key
        self._lock = threading.Lock()
        self._keys: dict[int, bytes] = {}
        self._newest: int | None = None
        self._read_at: float | None = None

    def current(self, now: datetime) -> tuple[int, bytes]:
        """(id, key) of the data key that seals new tokens. Raises ``Unavailable``."""
        with self._lock:
            self._refresh(now)
            assert self._newest is not None, "a refresh leaves at least one key"
            return self._newest, self._keys[self._newest]

    def all(self, now: datetime) -> dict[int, bytes]:
        """Every data key by id, to open tokens. Raises ``Unavailable``."""
        with self._lock:
            self._refresh(now)
            return dict(self._keys)

    def _refresh(self, now: datetime) -> None:
        fresh = self._read_at is not None and self._clock() - self._read_at < self._cache_seconds
        if fresh and self._newest is not None:
            return
        with db.autocommit(self._database) as cur:
            rows = sql.revision_keys(cur, self._kms_key_id)
            keys = {key_id: self._keys.get(key_id) or self._unwrap(key_id, wrapped)
                    for key_id, wrapped in rows}  # fmt: skip
            usable = {key_id: key for key_id, key in keys.items() if key is not None}
            if not rows or keys[rows[0][0]] is None:
                # None yet, or the newest no longer unwraps (its KMS key is gone): a new one.
                key = self._new_key(DATA_KEY_BYTES)
                wrapped = self._call("encrypt", Plaintext=key)
                rows.insert(
                    0, (sql.insert_revision_key(cur, self._kms_key_id, wrapped, now), wrapped)
                )
                usable[rows[0][0]] = key
        self._keys = usable
        self._newest = rows[0][0]
        self._read_at = self._clock()

    def _unwrap(self, key_id: int, wrapped: bytes) -> bytes | None:
        """The data key, or ``None`` if KMS says this ciphertext is not its own (its key was
        deleted or replaced): tokens sealed with it no longer open. A KMS outage raises."""
        try:
            return self._call("decrypt", CiphertextBlob=wrapped)
        except Unavailable as error:
            if aws.error_code(error.__cause__ or error) not in _NOT_UNWRAPPABLE:
                raise
            log.error("a revision data key no longer unwraps", extra={"key_id": key_id})
            return None

    def _call(self, operation: str, **arguments: Any) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = getattr(self._kms(), operation)(
                KeyId=self._kms_key_id, EncryptionContext=_CONTEXT, **arguments
            )
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable(f"kms ({type(exc).__name__})") from exc
        return bytes(answer["CiphertextBlob" if operation == "encrypt" else "Plaintext"])
