"""Signing export.bin with a local PEM key and verifying signatures."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from export_samples import EXPORT_BIN, SIGNATURE_INFO

from covidtracer.enffiles.exportfile import (
    build_zip,
    encode_signature_list,
)
from covidtracer.enffiles.signing import PemSigner, Signer, verify_signature
from tracerstack.exportreader import read_export_zip, unzip_export


def private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def signer() -> PemSigner:
    return PemSigner(private_pem(ec.generate_private_key(ec.SECP256R1())))


def test_a_pem_signer_is_a_signer(signer: PemSigner) -> None:
    typed: Signer = signer  # checked by mypy: PemSigner satisfies the Protocol
    assert typed.public_key_pem().startswith("-----BEGIN PUBLIC KEY-----")


def test_a_signature_from_the_pem_signer_verifies_with_its_public_key(signer: PemSigner) -> None:
    signature = signer.sign(EXPORT_BIN)

    assert signature[0] == 0x30  # an ASN.1 DER SEQUENCE
    assert verify_signature(EXPORT_BIN, signature, signer.public_key_pem())


def test_a_signature_does_not_verify_with_another_key(signer: PemSigner) -> None:
    other = PemSigner(private_pem(ec.generate_private_key(ec.SECP256R1())))

    assert not verify_signature(EXPORT_BIN, signer.sign(EXPORT_BIN), other.public_key_pem())


@pytest.mark.parametrize("signature", [b"", b"\x00" * 72, b"\x30\x06\x02\x01\x01\x02\x01\x01"])
def test_a_malformed_signature_is_not_valid(signer: PemSigner, signature: bytes) -> None:
    assert not verify_signature(EXPORT_BIN, signature, signer.public_key_pem())


def test_a_signed_zip_round_trips_and_verifies(signer: PemSigner) -> None:
    export_sig = encode_signature_list(SIGNATURE_INFO, 1, 1, signer.sign(EXPORT_BIN))

    archive = build_zip(EXPORT_BIN, export_sig)
    export_bin, _ = unzip_export(archive)
    _, signatures = read_export_zip(archive)

    assert signatures[0].signature_info == SIGNATURE_INFO
    assert verify_signature(export_bin, signatures[0].signature, signer.public_key_pem())


@pytest.mark.parametrize(
    "key",
    [ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)],
    ids=["p384", "rsa"],
)
def test_the_pem_signer_refuses_keys_phones_cannot_verify(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
) -> None:
    with pytest.raises(ValueError, match="P-256"):
        PemSigner(private_pem(key))


def test_verification_refuses_a_public_key_that_is_not_p256(signer: PemSigner) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    pem = p384.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    with pytest.raises(ValueError, match="P-256"):
        verify_signature(EXPORT_BIN, signer.sign(EXPORT_BIN), pem)
