"""Signing and verifying export.bin: ECDSA P-256 over SHA-256 of the whole file, DER-encoded."""

from __future__ import annotations

from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class Signer(Protocol):
    """Signs export.bin for export.sig.

    `sign` returns an ASN.1 DER ECDSA P-256 signature over SHA-256 of `message` (all of
    export.bin, header included): exactly what TEKSignature.signature carries.

    A KMS signer fits as is: KMS `Sign` with `SigningAlgorithm=ECDSA_SHA_256` on an
    ECC_NIST_P256 key returns DER. `MessageType=RAW` (KMS hashes) only takes messages up to
    4096 bytes and export files are usually larger (1,000 keys are ~30 KB), so it sends
    `sha256(message)` with `MessageType=DIGEST`; the signature verifies the same way.
    """

    def sign(self, message: bytes | bytearray) -> bytes: ...

    def public_key_pem(self) -> str:
        """The SubjectPublicKeyInfo PEM that phones' configuration must hold."""
        ...


class PemSigner:
    """A `Signer` over a local PEM private key: for the local stack and tests.

    Raises `ValueError` if the PEM cannot be loaded or is not an EC P-256 private key.
    """

    def __init__(self, private_key_pem: bytes | str, password: bytes | None = None) -> None:
        data = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        key = serialization.load_pem_private_key(data, password=password)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ValueError("export signing needs an EC P-256 (secp256r1) private key")
        self._key = key

    def sign(self, message: bytes | bytearray) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))

    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )


def verify_signature(export_bin: bytes, signature_der: bytes, public_key_pem: bytes | str) -> bool:
    """Whether `signature_der` is a valid ECDSA P-256/SHA-256 signature of `export_bin`.

    A malformed signature is simply not valid (False). Raises `ValueError` if the PEM is not
    an EC P-256 public key: that is a configuration error, not a bad file.
    """
    data = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("export verification needs an EC P-256 (secp256r1) public key")
    try:
        key.verify(signature_der, export_bin, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
