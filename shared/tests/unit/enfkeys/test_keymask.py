"""The service's half of the key mask (``enfkeys.keymask``); the database's half, and the
two together, are in the integration tier (``test_key_mask.py``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pytest

from covidtracer.enfkeys import keymask

SECRET = bytes(range(32))
NONCE = bytes(range(100, 116))


def test_a_key_is_xored_with_16_bytes_of_sha256_of_secret_nonce_and_its_position() -> None:
    keys = [bytes(16), b"\xff" * 16]
    pads = [hashlib.sha256(SECRET + NONCE + i.to_bytes(4)).digest()[:16] for i in (1, 2)]
    assert keymask.mask(SECRET, NONCE, keys) == [pads[0], bytes(b ^ 0xFF for b in pads[1])]


def test_masking_twice_gives_the_keys_back() -> None:
    keys = [secrets.token_bytes(16) for _ in range(30)]
    assert keymask.mask(SECRET, NONCE, keymask.mask(SECRET, NONCE, keys)) == keys


def test_one_key_in_two_positions_gets_two_pads() -> None:
    key = secrets.token_bytes(16)
    first, second = keymask.mask(SECRET, NONCE, [key, key])
    assert first != second


@pytest.mark.parametrize("length", [0, 15, 17, 32])
def test_only_16_byte_keys_are_masked(length: int) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        keymask.mask(SECRET, NONCE, [bytes(length)])


def test_a_mask_sends_the_masked_keys_their_nonce_and_the_secrets_fingerprint() -> None:
    keys = [secrets.token_bytes(16) for _ in range(3)]
    sent = keymask.Mask(SECRET).keys(keys)
    assert sent.nonce is not None and len(sent.nonce) == 16
    assert sent.keys == keymask.mask(SECRET, sent.nonce, keys)
    assert sent.fingerprint == hashlib.sha256(b"fingerprint" + SECRET).digest()[:8]


def test_without_a_secret_keys_go_plain_and_digests_unkeyed() -> None:
    """A database before migration 0008 (a release's first seconds, before its migrations)."""
    keys = [secrets.token_bytes(16)]
    sent = keymask.Mask(None).keys(keys)
    assert (sent.keys, sent.nonce, sent.fingerprint) == (keys, None, None)
    assert keymask.Mask(None).digest(b"digest") == b"digest"


def test_a_digest_is_an_hmac_under_the_secret() -> None:
    expected = hmac.new(SECRET, b"digest" + b"d" * 32, hashlib.sha256).digest()
    assert keymask.Mask(SECRET).digest(b"d" * 32) == expected
