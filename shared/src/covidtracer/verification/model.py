"""Pure rules of Google's verification contract (``/api/verify``, ``/api/certificate``) and
of the JSON bodies of Google's routes; the apps and health authorities document.

Facts are Google's, each cited to the file that defines it, in
google/exposure-notifications-verification-server (``docs/api.md``, ``pkg/api/api.go``,
``pkg/api/util.go``, ``pkg/controller/verifyapi/verify.go``,
``pkg/controller/certapi/certificate.go``, ``pkg/database/token.go``) and
google/exposure-notifications-server (``pkg/api/v1/verification_types.go``,
``internal/jsonutil/unmarshal.go``). No I/O and no clock: ``now`` is a parameter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from covidtracer.enffiles.model import INTERVAL_SECONDS
from covidtracer.enfkeys.model import (
    CONFIRMED_CLINICAL_DIAGNOSIS,
    CONFIRMED_TEST,
    REVOKED,
    SELF_REPORT,
)
from covidtracer.errors import DomainError

# pkg/api/api.go: the error codes of the verification API.
UNPARSABLE_REQUEST = "unparsable_request"
INTERNAL = "internal_server_error"
CODE_INVALID = "code_invalid"
CODE_EXPIRED = "code_expired"
CODE_NOT_FOUND = "code_not_found"
UNSUPPORTED_TEST_TYPE = "unsupported_test_type"
INVALID_TEST_TYPE = "invalid_test_type"
TOKEN_INVALID = "token_invalid"  # noqa: S105 - an error code
TOKEN_EXPIRED = "token_expired"  # noqa: S105 - an error code
HMAC_INVALID = "hmac_invalid"

# pkg/api/api.go TestType* (= exposure-notifications-server pkg/api/v1/verification_types.go
# ReportType*), and the export's report types they are stored as (export.proto ReportType).
CONFIRMED = "confirmed"
LIKELY = "likely"
NEGATIVE = "negative"
USER_REPORT = "user-report"
REPORT_TYPES = {
    CONFIRMED: CONFIRMED_TEST,
    LIKELY: CONFIRMED_CLINICAL_DIAGNOSIS,
    USER_REPORT: SELF_REPORT,
    NEGATIVE: REVOKED,
}
TEST_TYPE_NAMES = {number: name for name, number in REPORT_TYPES.items()}

# certapi/certificate.go: HMACLength, a SHA-256 HMAC.
HMAC_LENGTH = 32
# internal/jsonutil/unmarshal.go: maxBodyBytes, the request size Google's servers read.
MAX_BODY_BYTES = 64_000
# The claim names of a certificate: pkg/api/v1/verification_types.go.
TEKMAC_CLAIM = "tekmac"
REPORT_TYPE_CLAIM = "reportType"
SYMPTOM_ONSET_CLAIM = "symptomOnsetInterval"

TOKEN_ISSUER = "covidtracer-enf-verification"  # noqa: S105 - a JWT iss, not a secret


class VerificationApiError(DomainError, status=400, title="The request was refused."):
    """An answer of the verification API in its own shape (pkg/api/api.go ErrorReturn):
    ``{"error", "errorCode", "error_code"}`` (the last is Google's deprecated duplicate,
    still sent). Messages never quote the input."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status  # type: ignore[misc]
        self.code = code
        self.message = message
        # Seconds to wait, for a 429 (set by ``service.google_errors``) or a 503.
        self.retry_after: int | None = 5 if status >= 500 else None

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "errorCode": self.code, "error_code": self.code}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


def unavailable() -> VerificationApiError:
    """A dependency outage, in this API's shape: retryable (docs/api.md: 5xx, retry)."""
    return VerificationApiError(503, INTERNAL, "internal error")


@dataclass(frozen=True)
class JsonRequest:
    """A request to one of Google's routes as its handler hands it over: the body undecoded
    (its content type, size and fields are part of Google's contract, checked here)."""

    raw_body: bytes = b""
    content_type: str = ""
    api_key: str | None = None
    source_ip: str = "unknown"


def decode_json(
    request: JsonRequest,
    fields: Sequence[str],
    refuse: Callable[[int, str], Exception],
) -> dict[str, Any]:
    """The body as Google's servers decode it (internal/jsonutil/unmarshal.go): 415 unless
    the content type starts ``application/json``, 413 over ``MAX_BODY_BYTES``, 400 for
    malformed JSON, a non-object or an unknown field. Field names match case-insensitively,
    as Go's encoding/json does (``hmackey`` is ``hmacKey``); the result is keyed by
    ``fields``' spelling. ``refuse(status, message)`` makes the route's error."""
    if not request.content_type.lower().startswith("application/json"):
        raise refuse(415, "content-type is not application/json")
    if len(request.raw_body) > MAX_BODY_BYTES:
        raise refuse(413, "http: request body too large")
    if not request.raw_body.strip():
        raise refuse(400, "body must not be empty")
    try:
        value = json.loads(request.raw_body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise refuse(400, "malformed json") from exc
    if not isinstance(value, dict):
        raise refuse(400, "body must be a JSON object")
    canonical = {name.lower(): name for name in fields}
    decoded: dict[str, Any] = {}
    for name, item in value.items():
        known = name if name in fields else canonical.get(name.lower())
        if known is None:
            # Never echo the name back in full: it is the caller's text.
            raise refuse(400, "unknown field")
        decoded[known] = item
    return decoded


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_base64(value: str) -> bytes | None:
    """Google's base64util.DecodeString: standard or URL alphabet, padded or not; ``None``
    for anything else."""
    text = value.strip()
    if not text.isascii():
        return None
    padded = (text + "=" * (-len(text) % 4)).encode("ascii")
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


# ---------------------------------------------------------------------------- /api/verify

VERIFY_FIELDS = ("code", "accept", "padding", "nonce")


@dataclass(frozen=True)
class VerifyRequest:
    code: str
    accept: frozenset[str]


def accepted_test_types(accept: object) -> frozenset[str]:
    """pkg/api/util.go GetAcceptedTestTypes: none means all; ``likely`` implies
    ``confirmed``, ``negative`` implies both, ``user-report`` implies ``confirmed``.
    Raises ``VerificationApiError`` (400 ``invalid_test_type``) for an unknown type."""
    if accept is None or accept == []:
        return frozenset(REPORT_TYPES)
    if not isinstance(accept, list):
        raise VerificationApiError(400, UNPARSABLE_REQUEST, "accept must be a list")
    implied = {
        CONFIRMED: {CONFIRMED},
        LIKELY: {CONFIRMED, LIKELY},
        NEGATIVE: {CONFIRMED, LIKELY, NEGATIVE},
        USER_REPORT: {CONFIRMED, USER_REPORT},
    }
    accepted: set[str] = set()
    for item in accept:
        name = item.lower() if isinstance(item, str) else None
        if name not in implied:
            raise VerificationApiError(400, INVALID_TEST_TYPE, "invalid accepted test type")
        accepted |= implied[name]
    return frozenset(accepted)


def parse_verify(body: Mapping[str, Any]) -> VerifyRequest:
    code = body.get("code")
    if not isinstance(code, str) or not isinstance(body.get("padding", ""), str):
        raise VerificationApiError(400, UNPARSABLE_REQUEST, "invalid value")
    return VerifyRequest(code=code.strip(), accept=accepted_test_types(body.get("accept")))


def is_code_shaped(code: str, digits: int) -> bool:
    """NCTS's codes are ``digits`` ASCII digits: anything else cannot be one."""
    return len(code) == digits and code.isascii() and code.isdigit()


def verify_response(report_type: int, symptom_onset: date | None, token: str) -> dict[str, str]:
    """The VerifyCodeResponse (docs/api.md): ``testtype``, ``symptomDate`` and ``testDate``
    when set (NCTS's codes carry no test date, so it is omitted, as Google omits an unset
    date), and the token."""
    answer = {"testtype": TEST_TYPE_NAMES[report_type]}
    if symptom_onset is not None:
        answer["symptomDate"] = symptom_onset.isoformat()
    answer["token"] = token
    return answer


def token_subject(report_type: int, symptom_onset: date | None) -> str:
    """pkg/database/token.go Subject.String: ``testtype.symptomDate.testDate``."""
    onset = symptom_onset.isoformat() if symptom_onset else ""
    return f"{TEST_TYPE_NAMES[report_type]}.{onset}."


# ---------------------------------------------------------------------------- /api/certificate

CERTIFICATE_FIELDS = ("token", "ekeyhmac", "padding")


@dataclass(frozen=True)
class CertificateRequest:
    token: str
    ekeyhmac: str


def parse_certificate(body: Mapping[str, Any]) -> CertificateRequest:
    """certapi/certificate.go: a token and an ``ekeyhmac`` that is base64 of 32 bytes
    (``hmac_invalid`` otherwise). A body that is not one is ``token_invalid`` (Google
    answers a bind failure with that code)."""
    token, ekeyhmac = body.get("token"), body.get("ekeyhmac")
    if not isinstance(token, str) or not isinstance(body.get("padding", ""), str):
        raise VerificationApiError(400, TOKEN_INVALID, "invalid verification token")
    mac = decode_base64(ekeyhmac) if isinstance(ekeyhmac, str) else None
    if mac is None:
        raise VerificationApiError(400, HMAC_INVALID, "exposure key HMAC is not a valid base64")
    if len(mac) != HMAC_LENGTH:
        raise VerificationApiError(
            400, HMAC_INVALID, f"exposure key HMAC is not the correct length, want: {HMAC_LENGTH}"
        )
    return CertificateRequest(token=token, ekeyhmac=ekeyhmac)  # type: ignore[arg-type]


def interval_of(day: date) -> int:
    """The 10-minute interval number at the start of ``day`` (UTC)."""
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp()) // INTERVAL_SECONDS


@dataclass(frozen=True)
class Issuer:
    """Who signs certificates and for whom (``VerificationSettings``)."""

    kid: str
    issuer: str
    audience: str
    lifetime: timedelta
    clock_skew: timedelta


def certificate_claims(
    issuer: Issuer, report_type: int, symptom_onset: date | None, tekmac: str, now: datetime
) -> dict[str, Any]:
    """certapi/certificate.go: ``reportType``, ``symptomOnsetInterval`` (when the code had
    an onset date), ``tekmac`` = the ``ekeyhmac`` as sent, ``iss``/``aud``, ``iat`` and
    ``nbf`` back-dated by the allowed clock skew, ``exp`` = now + the certificate's life."""
    issued = int((now - issuer.clock_skew).timestamp())
    claims: dict[str, Any] = {
        REPORT_TYPE_CLAIM: TEST_TYPE_NAMES[report_type],
        TEKMAC_CLAIM: tekmac,
        "aud": issuer.audience,
        "iss": issuer.issuer,
        "iat": issued,
        "nbf": issued,
        "exp": int((now + issuer.lifetime).timestamp()),
    }
    if symptom_onset is not None:
        claims[SYMPTOM_ONSET_CLAIM] = interval_of(symptom_onset)
    return claims


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def es256_jwt(kid: str, claims: Mapping[str, Any], sign_raw: Callable[[bytes], bytes]) -> str:
    """A compact ES256 JWT (RFC 7515/7518) whose signature ``sign_raw`` makes: the 64-byte
    r||s over the signing input (a KMS key signs it; the key never leaves KMS)."""
    header = {"alg": "ES256", "kid": kid, "typ": "JWT"}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = sign_raw(signing_input.encode("ascii"))
    return f"{signing_input}.{_b64url(signature)}"


# ---------------------------------------------------------------------------- apps document


@dataclass(frozen=True)
class AuthorityKey:
    """A health authority's public key version (its ``kid``) and when it is valid."""

    pem: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        """exposure-notifications-server internal/verification/model: a key is valid from
        its start (if any) until its end (if any)."""
        return (self.valid_from is None or self.valid_from <= now) and (
            self.valid_until is None or now < self.valid_until
        )


@dataclass(frozen=True)
class HealthAuthority:
    """A certificate issuer a key server accepts: iss, aud, keys by kid, and the publish
    apps (``healthAuthorityID``) that may use it."""

    issuer: str
    audience: str
    keys: Mapping[str, AuthorityKey]
    app_ids: frozenset[str]


@dataclass(frozen=True)
class AppsDocument:
    """The stage's apps and health authorities, from one Secrets Manager secret::

        {"apiKey": "<the ENX app's device API key>", "app": "enx",
         "apps": [{"name": "…", "apiKey": "…"}],
         "healthAuthorities": [{"issuer": "…", "audience": "…",
             "healthAuthorityIDs": ["…"],
             "keys": [{"kid": "v1", "publicKeyPem": "…", "validFrom": "…", "validUntil": "…"}]}]}

    Only ``apiKey`` is required (CloudFormation generates it). API keys are held as their
    SHA-256: a look-up compares digests, never the key text.
    """

    api_keys: Mapping[bytes, str]
    authorities: tuple[HealthAuthority, ...]

    def app_for(self, api_key: str | None) -> str | None:
        if not api_key:
            return None
        return self.api_keys.get(api_key_digest(api_key))


def api_key_digest(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).digest()


def parse_apps_document(text: str) -> AppsDocument:
    """Raises ``ValueError`` naming what is wrong (never a key's value)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError("the apps document is not JSON") from exc
    if not isinstance(value, dict):
        raise ValueError("the apps document must be a JSON object")
    apps = [{"name": value.get("app") or "enx", "apiKey": value.get("apiKey")}]
    apps += value.get("apps") or []
    api_keys: dict[bytes, str] = {}
    for app in apps:
        if not (
            isinstance(app, dict)
            and isinstance(app.get("name"), str)
            and isinstance(app.get("apiKey"), str)
            and len(app["apiKey"]) >= 16
        ):
            raise ValueError("every app needs a name and an apiKey of at least 16 characters")
        api_keys[api_key_digest(app["apiKey"])] = app["name"]
    authorities = tuple(_authority(item) for item in value.get("healthAuthorities") or [])
    return AppsDocument(api_keys=api_keys, authorities=authorities)


def _authority(item: object) -> HealthAuthority:
    if not isinstance(item, dict):
        raise ValueError("a health authority must be an object")
    issuer, audience = item.get("issuer"), item.get("audience")
    ids, keys = item.get("healthAuthorityIDs") or [], item.get("keys") or []
    if not (isinstance(issuer, str) and issuer and isinstance(audience, str) and audience):
        raise ValueError("a health authority needs an issuer and an audience")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError(f"healthAuthorityIDs of {issuer} must be a list of strings")
    versions: dict[str, AuthorityKey] = {}
    for key in keys if isinstance(keys, list) else [None]:
        if not (
            isinstance(key, dict)
            and isinstance(key.get("kid"), str)
            and isinstance(key.get("publicKeyPem"), str)
        ):
            raise ValueError(f"every key of {issuer} needs a kid and a publicKeyPem")
        versions[key["kid"]] = AuthorityKey(
            key["publicKeyPem"], _instant(key.get("validFrom")), _instant(key.get("validUntil"))
        )
    return HealthAuthority(issuer, audience, versions, frozenset(ids))


def _instant(value: object) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError("key validity times must be ISO 8601 text")
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
