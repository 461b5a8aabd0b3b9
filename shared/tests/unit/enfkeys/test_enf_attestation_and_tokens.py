"""Android attestation against a locally made CA, and the API's own JWTs."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from covidtracer.enfkeys import tokens
from covidtracer.enfkeys.attestation import (
    AndroidVerifier,
    AttestationFailed,
    TestVerifier,
    verifier_for,
)
from covidtracer.enfkeys.settings import AttestationSettings
from covidtracer.errors import Unauthorized

NOW = datetime(2021, 10, 20, 9, 30, tzinfo=UTC)
NONCE = "ab" * 32
PACKAGE = "nz.govt.health.covidtracer"


def _cert(
    subject: str,
    key: Any,
    issuer: str,
    issuer_key: Any,
    *,
    ca: bool,
    san: str | None = None,
    days: int = 365,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), False)
    return builder.sign(issuer_key, hashes.SHA256())


class Pki:
    """A root, an intermediate and an attest.android.com leaf, all made here."""

    def __init__(self, hostname: str = "attest.android.com") -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _cert("Test Root", self.root_key, "Test Root", self.root_key, ca=True)
        inter_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = _cert("Test CA", inter_key, "Test Root", self.root_key, ca=True)
        self.leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.leaf = _cert(hostname, self.leaf_key, "Test CA", inter_key, ca=False, san=hostname)

    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode()

    def jws(self, claims: dict[str, Any], *, chain: list[x509.Certificate] | None = None) -> str:
        chain = chain if chain is not None else [self.leaf, self.intermediate]
        header = {
            "alg": "RS256",
            "x5c": [
                base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain
            ],
        }

        def enc(value: bytes) -> str:
            return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

        signed = f"{enc(json.dumps(header).encode())}.{enc(json.dumps(claims).encode())}"
        signature = self.leaf_key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{enc(signature)}"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def _settings(
    root_pem: str | None, platforms: tuple[str, ...] = ("android",)
) -> AttestationSettings:
    return AttestationSettings(
        platforms=platforms,
        android_package_name=PACKAGE,
        android_root_pem=root_pem,
        android_hostname="attest.android.com",
        android_max_age_seconds=600,
        apple_devicecheck_url="https://devicecheck.example",
        apple_team_id=None,
        apple_key_id=None,
        apple_key_secret_id=None,
    )


def _safetynet(**overrides: Any) -> dict[str, Any]:
    claims = {
        "nonce": base64.b64encode(NONCE.encode()).decode(),
        "timestampMs": int(NOW.timestamp() * 1000) - 5_000,
        "apkPackageName": PACKAGE,
        "ctsProfileMatch": True,
        "basicIntegrity": True,
    }
    claims.update(overrides)
    return claims


def test_a_genuine_safetynet_attestation_passes(pki: Pki) -> None:
    AndroidVerifier(_settings(pki.root_pem())).verify(pki.jws(_safetynet()), NONCE, NOW)


def test_a_genuine_play_integrity_verdict_passes(pki: Pki) -> None:
    claims = {
        "requestDetails": {"nonce": NONCE, "timestampMillis": str(int(NOW.timestamp() * 1000))},
        "appIntegrity": {"packageName": PACKAGE},
        "deviceIntegrity": {"deviceRecognitionVerdict": ["MEETS_DEVICE_INTEGRITY"]},
    }
    AndroidVerifier(_settings(pki.root_pem())).verify(pki.jws(claims), NONCE, NOW)


@pytest.mark.parametrize(
    "claims",
    [
        _safetynet(nonce=base64.b64encode(b"another nonce").decode()),
        _safetynet(apkPackageName="com.example.fake"),
        _safetynet(ctsProfileMatch=False),
        _safetynet(basicIntegrity=False),
        _safetynet(timestampMs=int((NOW - timedelta(hours=1)).timestamp() * 1000)),
        _safetynet(timestampMs=None),
    ],
)
def test_a_payload_that_does_not_vouch_for_this_device_and_nonce_is_refused(
    pki: Pki, claims: dict[str, Any]
) -> None:
    with pytest.raises(AttestationFailed):
        AndroidVerifier(_settings(pki.root_pem())).verify(pki.jws(claims), NONCE, NOW)


def test_a_chain_to_another_root_is_refused(pki: Pki) -> None:
    other = Pki()
    with pytest.raises(AttestationFailed):
        AndroidVerifier(_settings(other.root_pem())).verify(pki.jws(_safetynet()), NONCE, NOW)


def test_a_leaf_for_another_host_is_refused() -> None:
    impostor = Pki(hostname="attest.example.com")
    with pytest.raises(AttestationFailed):
        AndroidVerifier(_settings(impostor.root_pem())).verify(
            impostor.jws(_safetynet()), NONCE, NOW
        )


def test_a_tampered_payload_fails_the_signature(pki: Pki) -> None:
    header, _, signature = pki.jws(_safetynet()).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(_safetynet(ctsProfileMatch=True, x=1)).encode())
    with pytest.raises(AttestationFailed):
        AndroidVerifier(_settings(pki.root_pem())).verify(
            f"{header}.{forged.rstrip(b'=').decode()}.{signature}", NONCE, NOW
        )


@pytest.mark.parametrize("payload", ["", "a.b", "not.a.jws", "e30.e30.e30"])
def test_garbage_is_refused_not_crashed_on(pki: Pki, payload: str) -> None:
    with pytest.raises(AttestationFailed):
        AndroidVerifier(_settings(pki.root_pem())).verify(payload, NONCE, NOW)


def test_an_expired_certificate_is_refused(pki: Pki) -> None:
    with pytest.raises(AttestationFailed):
        AndroidVerifier(_settings(pki.root_pem())).verify(
            pki.jws(_safetynet()), NONCE, NOW + timedelta(days=400)
        )


def test_an_unconfigured_android_verifier_refuses_everyone(pki: Pki) -> None:
    with pytest.raises(AttestationFailed):
        AndroidVerifier(_settings(None)).verify(pki.jws(_safetynet()), NONCE, NOW)


def test_the_test_verifier_exists_only_where_settings_allow_it() -> None:
    assert isinstance(verifier_for("test", _settings(None, ("test",)), 5), TestVerifier)
    with pytest.raises(AttestationFailed):
        verifier_for("test", _settings(None, ("ios", "android")), 5)


# ---------------------------------------------------------------------------- tokens

KEY = "k" * 64
REGISTRATION = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")


def test_an_access_token_names_its_registration_until_it_expires() -> None:
    token = tokens.issue(
        KEY, REGISTRATION, kind=tokens.ACCESS, now=NOW, lifetime=timedelta(hours=1)
    )
    claims = tokens.verify(KEY, token, kind=tokens.ACCESS, now=NOW + timedelta(minutes=59))
    assert claims.registration_id == REGISTRATION
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, token, kind=tokens.ACCESS, now=NOW + timedelta(minutes=60))


def test_tokens_are_not_interchangeable_or_forgeable() -> None:
    access = tokens.issue(
        KEY, REGISTRATION, kind=tokens.ACCESS, now=NOW, lifetime=timedelta(hours=1)
    )
    refresh = tokens.issue(
        KEY,
        REGISTRATION,
        kind=tokens.REFRESH,
        now=NOW,
        lifetime=timedelta(days=1),
        refresh_secret="s",
    )
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, access, kind=tokens.REFRESH, now=NOW)
    with pytest.raises(Unauthorized):
        tokens.verify(KEY, refresh, kind=tokens.ACCESS, now=NOW)
    with pytest.raises(Unauthorized):
        tokens.verify("another key" * 6, access, kind=tokens.ACCESS, now=NOW)
    for bad in (None, "", "abc.def.ghi"):
        with pytest.raises(Unauthorized):
            tokens.verify(KEY, bad, kind=tokens.ACCESS, now=NOW)
    assert tokens.verify(KEY, refresh, kind=tokens.REFRESH, now=NOW).refresh_secret == "s"
