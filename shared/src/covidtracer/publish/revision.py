"""Revision tokens: the keys a device may later revise, sealed with AES-256-GCM under a data
key that only KMS can unwrap (envelope encryption, as google/exposure-notifications-server
internal/revision/revision.go). Opaque to phones, which send the token back as it is.

Layout (base64): ``version (1) | data key id (4) | nonce (12) | ciphertext``, the plaintext
``start (int32) | period (int32) | key (16)`` per key, padded with zero slots to a multiple
of the minimum (Google pads to 28 keys) so the size says nothing about the key count.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

VERSION = 1
AAD = b"covidtracer.enf.revision-token.v1"
NONCE_BYTES = 12
_HEADER = struct.Struct(">BI")
_SLOT = struct.Struct(">ii16s")
_EMPTY = _SLOT.pack(0, 0, bytes(16))


@dataclass(frozen=True, order=True)
class RevisableKey:
    """A key named in a token: its bytes and the validity it was published with."""

    key_data: bytes
    rolling_start_number: int
    rolling_period: int


class InvalidToken(ValueError):
    """Not a token this server made with a data key it still holds."""


def seal(
    keys: Iterable[RevisableKey],
    key_id: int,
    data_key: bytes,
    min_keys: int,
    nonce: Callable[[int], bytes] = os.urandom,
) -> str:
    """A token naming ``keys`` (each once), sealed under ``data_key`` (its ``key_id``)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    unique = sorted(set(keys))
    slots = max(1, -(-len(unique) // min_keys)) * min_keys
    plaintext = b"".join(
        _SLOT.pack(k.rolling_start_number, k.rolling_period, k.key_data) for k in unique
    ) + _EMPTY * (slots - len(unique))
    iv = nonce(NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(iv, plaintext, AAD)
    return base64.b64encode(_HEADER.pack(VERSION, key_id) + iv + sealed).decode("ascii")


def key_id_of(token: str) -> int:
    """The data key a token was sealed with; raises ``InvalidToken``."""
    raw = _decoded(token)
    return int(_HEADER.unpack_from(raw)[1])


def open_token(token: str, data_keys: Mapping[int, bytes]) -> frozenset[RevisableKey]:
    """The keys a token names; raises ``InvalidToken`` for anything not sealed by us
    (unknown data key, tampered, truncated)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = _decoded(token)
    version, key_id = _HEADER.unpack_from(raw)
    data_key = data_keys.get(key_id)
    if version != VERSION or data_key is None:
        raise InvalidToken("unknown revision token key")
    iv = raw[_HEADER.size : _HEADER.size + NONCE_BYTES]
    try:
        plaintext = AESGCM(data_key).decrypt(iv, raw[_HEADER.size + NONCE_BYTES :], AAD)
    except InvalidTag as exc:
        raise InvalidToken("revision token does not open") from exc
    if len(plaintext) % _SLOT.size:
        raise InvalidToken("revision token is malformed")
    return frozenset(
        RevisableKey(key, start, period)
        for start, period, key in _SLOT.iter_unpack(plaintext)
        if (start, period) != (0, 0)
    )


def _decoded(token: str) -> bytes:
    try:
        raw = base64.b64decode(token.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise InvalidToken("revision token is not base64") from exc
    if len(raw) < _HEADER.size + NONCE_BYTES + 16:
        raise InvalidToken("revision token is too short")
    return raw
