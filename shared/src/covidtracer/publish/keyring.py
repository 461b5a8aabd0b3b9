"""The revision tokens' data keys: AES-256 keys stored in ``revision_keys`` only wrapped by a
KMS key (``Encrypt``/``Decrypt`` with an encryption context), unwrapped on first use and
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
from covidtracer.publish import db as sql
from covidtracer.settings import DatabaseSettings

DATA_KEY_BYTES = 32
_CONTEXT = {"purpose": "covidtracer-enf-revision-token"}


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
            rows = sql.revision_keys(cur)
            if not rows:
                wrapped = self._call("encrypt", Plaintext=self._new_key(DATA_KEY_BYTES))
                rows = [(sql.insert_revision_key(cur, wrapped, now), wrapped)]
        for key_id, wrapped in rows:
            if key_id not in self._keys:
                self._keys[key_id] = self._call("decrypt", CiphertextBlob=wrapped)
        listed = {key_id for key_id, _ in rows}
        self._keys = {k: v for k, v in self._keys.items() if k in listed}
        self._newest = rows[0][0]
        self._read_at = self._clock()

    def _call(self, operation: str, **arguments: Any) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = getattr(self._kms(), operation)(
                KeyId=self._kms_key_id, EncryptionContext=_CONTEXT, **arguments
            )
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable(f"kms ({type(exc).__name__})") from exc
        return bytes(answer["CiphertextBlob" if operation == "encrypt" else "Plaintext"])
