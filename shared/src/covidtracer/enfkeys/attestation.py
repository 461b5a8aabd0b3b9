"""Device attestation: one verifier per platform, allowed by settings.

- ``android``: a SafetyNet or Play Integrity JWS. Its ``x5c`` chain must lead to the
  configured root, the leaf must be issued to the attestation host, the signature must
  verify with the leaf key, and the payload must carry our nonce, our package name, a fresh
  timestamp and a passing integrity verdict.
- ``ios``: DeviceCheck — the device token is sent to Apple (``/v1/validate_device_token``)
  with an ES256 JWT made from the team's key; Apple's 200 means a genuine device.
- ``test``: accepts anything (local and staging only; settings refuse it in prod).

A device that fails is ``Forbidden`` (403); Apple being unreachable is ``Unavailable``.
Payloads are never logged.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from covidtracer import aws, outbound
from covidtracer.enfkeys.settings import AttestationSettings
from covidtracer.errors import Forbidden, Unavailable
from covidtracer.logs import get_logger

log = get_logger(__name__)

PLAY_INTEGRITY_VERDICT = "MEETS_DEVICE_INTEGRITY"


class Verifier(Protocol):
    def verify(self, payload: str, nonce: str, now: datetime) -> None:
        """Raise ``Forbidden`` unless ``payload`` attests a genuine device for ``nonce``."""


class AttestationFailed(Forbidden):
    title = "The device could not be verified."


class TestVerifier:
    """Accepts every device: the local stack and staging (never prod, by settings)."""

    def verify(self, payload: str, nonce: str, now: datetime) -> None:
        return None


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class AndroidVerifier:
    """SafetyNet / Play Integrity JWS checked offline against the configured root."""

    def __init__(self, settings: AttestationSettings) -> None:
        self._settings = settings

    def verify(self, payload: str, nonce: str, now: datetime) -> None:
        if not self._settings.android_trusted_root():
            log.warning("android attestation is not configured")
            raise AttestationFailed()
        try:
            header_part, claims_part, signature_part = payload.split(".")
            header = json.loads(_b64url(header_part))
            claims = json.loads(_b64url(claims_part))
            signature = _b64url(signature_part)
        except (ValueError, binascii.Error) as exc:
            raise AttestationFailed() from exc
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise AttestationFailed()
        leaf = self._verified_leaf(header, now)
        self._check_signature(
            leaf, str(header.get("alg")), f"{header_part}.{claims_part}".encode(), signature
        )
        self._check_claims(claims, nonce, now)

    def _verified_leaf(self, header: Mapping[str, Any], now: datetime) -> Any:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.x509.oid import NameOID

        chain_der = header.get("x5c")
        if not isinstance(chain_der, list) or not chain_der:
            raise AttestationFailed()
        try:
            chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in chain_der]
            root_pem = self._settings.android_trusted_root() or ""
            root = x509.load_pem_x509_certificate(root_pem.encode())
        except (ValueError, TypeError, binascii.Error) as exc:
            raise AttestationFailed() from exc
        if chain[-1] != root:
            chain.append(root)
        try:
            for child, parent in itertools.pairwise(chain):
                child.verify_directly_issued_by(parent)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise AttestationFailed() from exc
        for cert in chain:
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise AttestationFailed()
        leaf = chain[0]
        names = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names += san.value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            pass
        if self._settings.android_hostname not in names:
            raise AttestationFailed()
        return leaf

    @staticmethod
    def _check_signature(leaf: Any, alg: str, signed: bytes, signature: bytes) -> None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        key = leaf.public_key()
        try:
            if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
                if len(signature) != 64:
                    raise AttestationFailed()
                der = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
                key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
            else:
                raise AttestationFailed()
        except InvalidSignature as exc:
            raise AttestationFailed() from exc

    def _check_claims(self, claims: Mapping[str, Any], nonce: str, now: datetime) -> None:
        details = claims.get("requestDetails")
        if isinstance(details, dict):  # Play Integrity
            sent_nonce = details.get("nonce")
            package = (claims.get("appIntegrity") or {}).get("packageName")
            timestamp_ms = details.get("timestampMillis")
            verdicts = (claims.get("deviceIntegrity") or {}).get("deviceRecognitionVerdict") or []
            passed = PLAY_INTEGRITY_VERDICT in verdicts
        else:  # SafetyNet
            sent_nonce = claims.get("nonce")
            package = claims.get("apkPackageName")
            timestamp_ms = claims.get("timestampMs")
            passed = claims.get("ctsProfileMatch") is True and claims.get("basicIntegrity") is True
        expected = {nonce, base64.b64encode(nonce.encode()).decode()}
        try:
            age = now.timestamp() - int(str(timestamp_ms)) / 1000
        except ValueError:
            age = float("inf")
        if (
            sent_nonce not in expected
            or package != self._settings.android_package_name
            or not passed
            or not -60 <= age <= self._settings.android_max_age_seconds
        ):
            raise AttestationFailed()


class DeviceCheckVerifier:
    """Apple DeviceCheck over HTTP with the team's ES256 key."""

    def __init__(self, settings: AttestationSettings, timeout_seconds: float) -> None:
        self._settings = settings
        self._timeout = timeout_seconds

    def _authorization(self, now: datetime) -> str:
        import jwt

        key = aws.secret_string(self._settings.apple_key_secret_id or "")
        return jwt.encode(
            {"iss": self._settings.apple_team_id, "iat": int(now.timestamp())},
            key,
            algorithm="ES256",
            headers={"kid": self._settings.apple_key_id},
        )

    def verify(self, payload: str, nonce: str, now: datetime) -> None:
        s = self._settings
        if not (s.apple_team_id and s.apple_key_id and s.apple_key_secret_id):
            log.warning("ios attestation is not configured")
            raise AttestationFailed()
        response = outbound.post(
            f"{s.apple_devicecheck_url.rstrip('/')}/v1/validate_device_token",
            dependency="devicecheck",
            timeout=self._timeout,
            json={
                "device_token": payload,
                "transaction_id": str(uuid.uuid4()),
                "timestamp": int(now.timestamp() * 1000),
            },
            headers={"Authorization": f"Bearer {self._authorization(now)}"},
        )
        if response.status_code == 200:
            return
        if response.status_code == 400:  # Apple: missing or badly formatted device token
            raise AttestationFailed()
        log.error("devicecheck refused the request", extra={"status": response.status_code})
        raise Unavailable("devicecheck")


def verifier_for(platform: str, settings: AttestationSettings, timeout_seconds: float) -> Verifier:
    """The verifier of an allowed ``platform`` (the caller validated it against settings)."""
    if platform == "test" and "test" in settings.platforms:
        return TestVerifier()
    if platform == "android":
        return AndroidVerifier(settings)
    if platform == "ios":
        return DeviceCheckVerifier(settings, timeout_seconds)
    raise AttestationFailed()
