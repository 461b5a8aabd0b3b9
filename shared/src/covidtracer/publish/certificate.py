"""Checking a verification certificate as Google's key server does
(google/exposure-notifications-server internal/verification/phaverify.go): ES256 only; the
``kid`` header required; the issuer names a health authority; the audience is that
authority's; a key of that ``kid`` valid now; the signature; ``exp``, ``nbf`` and ``iat``
against ``now`` with no leeway; then (after the signature, against timing) that the
publishing app may use the authority, the report type, and the ``tekmac``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from covidtracer.publish.model import CERTIFICATE_INVALID, PublishApiError, SentKey, tekmac_matches
from covidtracer.verification.model import (
    REPORT_TYPE_CLAIM,
    REPORT_TYPES,
    SYMPTOM_ONSET_CLAIM,
    TEKMAC_CLAIM,
    HealthAuthority,
    decode_base64,
)


@dataclass(frozen=True)
class VerifiedClaims:
    """phaverify.go VerifiedClaims: what the certificate sets on the keys."""

    report_type: str
    symptom_onset_interval: int | None


def _invalid(reason: str) -> PublishApiError:
    # publish.go: "unable to validate diagnosis verification: <reason>", 401.
    return PublishApiError(
        401, CERTIFICATE_INVALID, f"unable to validate diagnosis verification: {reason}"
    )


def _segment(part: str) -> dict[str, object]:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except ValueError as exc:
        raise _invalid("malformed certificate") from exc
    if not isinstance(value, dict):
        raise _invalid("malformed certificate")
    return value


def verify(
    certificate: str,
    authorities: Sequence[HealthAuthority],
    app_id: str,
    sent: Sequence[SentKey],
    hmac_key: str,
    now: datetime,
) -> VerifiedClaims:
    """The certificate's claims, if it passes every check; raises ``PublishApiError`` (401
    ``health_authority_verification_certificate_invalid``) naming the first that fails."""
    import jwt

    parts = certificate.split(".")
    if len(parts) != 3:
        raise _invalid("malformed certificate")
    header, unverified = _segment(parts[0]), _segment(parts[1])
    if header.get("alg") != "ES256":
        raise _invalid("unsupported signing method, must be ES256")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise _invalid("missing required header field, 'kid' indicating key id")
    authority = next((a for a in authorities if a.issuer == unverified.get("iss")), None)
    if authority is None:
        raise _invalid("issuer not found")
    if unverified.get("aud") != authority.audience:
        raise _invalid("audience mismatch for issuer")
    key = authority.keys.get(kid)
    if key is None or not key.valid_at(now):
        raise _invalid("no active public keys for health authority")
    try:
        claims = jwt.decode(
            certificate,
            key.pem,
            algorithms=["ES256"],
            audience=authority.audience,
            issuer=authority.issuer,
            # Times are checked below against ``now`` (PyJWT reads the wall clock).
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except (jwt.PyJWTError, ValueError) as exc:
        raise _invalid("invalid signature or claims") from exc
    _check_times(claims, int(now.timestamp()))
    if app_id not in authority.app_ids:
        raise _invalid("app has not authorized health authority issuer")
    report_type = claims.get(REPORT_TYPE_CLAIM)
    if report_type not in REPORT_TYPES:
        raise _invalid("invalid report type")
    tekmac = decode_base64(str(claims.get(TEKMAC_CLAIM, "")))
    secret = decode_base64(hmac_key)
    if not tekmac or secret is None:
        raise _invalid("error decoding HMAC")
    if not sent or not tekmac_matches(sent, secret, tekmac):
        raise _invalid(
            "HMAC mismatch, publish request does not match disgnosis verification certificate"
        )
    onset = claims.get(SYMPTOM_ONSET_CLAIM)
    return VerifiedClaims(
        report_type=str(report_type),
        symptom_onset_interval=onset if isinstance(onset, int) and onset > 0 else None,
    )


def _check_times(claims: dict[str, object], now: int) -> None:
    """jwt-go StandardClaims.Valid: ``exp`` required and in the future, ``iat`` and ``nbf``
    (when present) not in the future."""
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now:
        raise _invalid("token is expired")
    for name in ("iat", "nbf"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, int) or value > now):
            raise _invalid("not valid yet (NBF or IAT) in the future")
