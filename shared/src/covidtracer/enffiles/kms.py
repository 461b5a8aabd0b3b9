"""The export signer in AWS: KMS ``Sign`` on an ECC_NIST_P256 ``SIGN_VERIFY`` key."""

from __future__ import annotations

import hashlib
from typing import Any

from covidtracer import aws
from covidtracer.errors import Unavailable


class KmsSigner:
    """A ``signing.Signer`` through KMS on an ECC_NIST_P256 ``SIGN_VERIFY`` key.

    Sends SHA-256(export.bin) with ``MessageType=DIGEST``: ``RAW`` is capped at 4096 bytes.
    KMS returns the DER signature phones expect. ``message_type="RAW"`` sends the file
    itself, for KMS emulators without DIGEST support (moto). Raises ``Unavailable`` if KMS
    fails.
    """

    def __init__(
        self, key_id: str, message_type: str = "DIGEST", client: Any | None = None
    ) -> None:
        self._key_id = key_id
        self._message_type = message_type
        self._client = client

    def _kms(self) -> Any:
        return self._client if self._client is not None else aws.kms()

    def sign(self, message: bytes | bytearray) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._kms().sign(
                KeyId=self._key_id,
                Message=(
                    hashlib.sha256(message).digest() if self._message_type == "DIGEST" else message
                ),
                MessageType=self._message_type,
                SigningAlgorithm="ECDSA_SHA_256",
            )
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable("kms") from exc
        return bytes(response["Signature"])

    def public_key_pem(self) -> str:
        from botocore.exceptions import BotoCoreError, ClientError
        from cryptography.hazmat.primitives import serialization

        try:
            der = self._kms().get_public_key(KeyId=self._key_id)["PublicKey"]
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable("kms") from exc
        key = serialization.load_der_public_key(bytes(der))
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
