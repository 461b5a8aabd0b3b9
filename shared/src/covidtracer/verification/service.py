"""Use cases of Google's verification contract on NCTS's codes, each ``f(deps, request, now)``.

``/api/verify`` exchanges a code that NCTS had texted (the same codes the NZ app verifies at
``POST /exposures/verify``) for a verification token; ``/api/certificate`` exchanges the
token and the device's HMAC of its keys for a certificate a key server accepts. Answers and
errors are the verification server's (``model``); codes, tokens and HMACs are never logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from covidtracer import db
from covidtracer.analytics.emitter import emit
from covidtracer.enfkeys import model as keys_model
from covidtracer.enfkeys import service as keys_service
from covidtracer.enfkeys import tokens
from covidtracer.enfkeys.settings import EnfSettings
from covidtracer.errors import DomainError, TooManyRequests, Unavailable
from covidtracer.logs import get_logger
from covidtracer.verification import db as sql
from covidtracer.verification import model
from covidtracer.verification.model import JsonRequest, VerificationApiError

log = get_logger(__name__)


@dataclass(frozen=True)
class Deps:
    """What the verification use cases need (``wiring``)."""

    settings: EnfSettings
    # The ENF API's HS256 secret: verification tokens are JWTs under it.
    signing_key: Callable[[], str]
    code_hash_key: Callable[[], bytes]
    apps: Callable[[], model.AppsDocument]
    # ES256 r||s over a JWT's signing input, by the certificate key (KMS).
    sign_certificate: Callable[[bytes], bytes]
    new_id: Callable[[], uuid.UUID] = uuid.uuid4


@contextmanager
def google_errors(make: Callable[[int, str, str], DomainError], internal: str) -> Iterator[None]:
    """Raise the dependency outages and rate limits of a Google route in its own shape:
    ``Unavailable`` is a 503 (retry), ``TooManyRequests`` a 429 with its Retry-After."""
    try:
        yield
    except Unavailable as exc:
        log.error("request failed", extra={"error": str(exc)})
        raise make(503, internal, "internal error") from exc
    except TooManyRequests as exc:
        error = make(429, "", "too many requests")
        error.retry_after = exc.retry_after_seconds  # type: ignore[attr-defined]
        raise error from exc


def issuer(settings: EnfSettings) -> model.Issuer:
    v = settings.verification
    return model.Issuer(
        kid=v.certificate_kid,
        issuer=v.certificate_issuer,
        audience=v.certificate_audience,
        lifetime=timedelta(minutes=v.certificate_minutes),
        clock_skew=timedelta(seconds=v.clock_skew_seconds),
    )


def _refused(status: int, message: str) -> VerificationApiError:
    return VerificationApiError(status, model.UNPARSABLE_REQUEST, message)


def require_app(deps: Deps, request: JsonRequest) -> str:
    """The app whose device API key ``X-API-Key`` holds; 401 otherwise (docs/api.md: "All
    endpoints require an API key"). Chaff requests need one too (docs/api.md, chaffing)."""
    with google_errors(VerificationApiError, model.INTERNAL):
        app = deps.apps().app_for(request.api_key)
    if app is None:
        raise VerificationApiError(401, "", "invalid API key")
    return app


def verify(deps: Deps, request: JsonRequest, now: datetime) -> dict[str, str]:
    """``POST /api/verify``: a code for a verification token (docs/api.md).

    Only the caller's address can refuse it: its wrong codes this hour (``POST
    /exposures/verify``'s per-address allowance, tightened while the guessing guard is up);
    a wrong code counts against the address and toward the guard in all, as the other
    contract's do, and is reported as a metric; wrong codes elsewhere never refuse it. The
    code is claimed in ``verification_codes``, where ``POST /exposures/verify`` claims it
    too: it is single-use across both contracts. A code of a test type the app does not
    accept is refused (412 ``unsupported_test_type``) and stays unclaimed. Raises
    ``VerificationApiError`` in the verification server's codes.
    """
    settings = deps.settings
    app = require_app(deps, request)
    body = model.decode_json(request, model.VERIFY_FIELDS, _refused)
    asked = model.parse_verify(body)
    outcome: sql.Claim
    with google_errors(VerificationApiError, model.INTERNAL):
        key = deps.code_hash_key()
        # Read before the claim commits: if Secrets Manager is down the answer is a 503 and
        # the code stays unclaimed for the retry (nothing half-done).
        signing = tokens.hs256_key(deps.signing_key())
        token_id = deps.new_id()
        with db.transaction(settings.database) as cur:
            retry_after = keys_service.address_retry_after(cur, settings, request.source_ip, now)
            if retry_after is not None:
                emit("upload_code_rejected", categories={"reason": "rate_limited"}, now=now)
                raise TooManyRequests(retry_after)
            outcome = sql.Claim(sql.NOT_FOUND)
            if model.is_code_shaped(asked.code, keys_model.CODE_DIGITS):
                digest = keys_service.code_hmac(key, keys_model.app_code_hash(asked.code))
                outcome = sql.claim_code(cur, digest, now)
            if outcome.outcome == sql.CLAIMED:
                if model.TEST_TYPE_NAMES[outcome.report_type] not in asked.accept:
                    # Rolls the claim back: an updated app can use the code.
                    raise VerificationApiError(
                        412,
                        model.UNSUPPORTED_TEST_TYPE,
                        "verification code has unsupported test type",
                    )
                expires_at = now + timedelta(hours=settings.verification.token_hours)
                sql.insert_token(cur, token_id, app, outcome, now, expires_at)
            else:
                keys_service.record_wrong_code(cur, settings, request.source_ip, now)
    if outcome.outcome != sql.CLAIMED:
        keys_service.report_wrong_code(settings.stage, _REASONS[outcome.outcome], now, __name__)
        raise _CODE_ERRORS[outcome.outcome]()
    emit("upload_code_verified", now=now)
    token = _verification_token(signing, token_id, outcome, expires_at, now)
    return model.verify_response(outcome.report_type, outcome.symptom_onset, token)


# docs/api.md /api/verify: code_invalid (used), code_expired, code_not_found. (Google's
# verify.go answers code_invalid for an unknown code too; the documented code is kept.)
_CODE_ERRORS: dict[str, Callable[[], VerificationApiError]] = {
    sql.USED: lambda: VerificationApiError(400, model.CODE_INVALID, "verification code invalid"),
    sql.EXPIRED: lambda: VerificationApiError(400, model.CODE_EXPIRED, "verification code expired"),
    sql.NOT_FOUND: lambda: VerificationApiError(
        400, model.CODE_NOT_FOUND, "verification code not found"
    ),
}
_REASONS = {sql.USED: "unknown", sql.EXPIRED: "expired", sql.NOT_FOUND: "unknown"}


def _verification_token(
    signing: Any, token_id: uuid.UUID, claim: sql.Claim, expires_at: datetime, now: datetime
) -> str:
    """The token as verify.go makes it: a JWT naming the token row (``jti``), with the
    test type and dates in ``sub``. Opaque to phones (docs/api.md: sent back exactly)."""
    import jwt

    claims: dict[str, Any] = {
        "iss": model.TOKEN_ISSUER,
        "aud": model.TOKEN_ISSUER,
        "jti": str(token_id),
        "sub": model.token_subject(claim.report_type, claim.symptom_onset),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, signing, algorithm="HS256")


def _token_id(deps: Deps, token: str, now: datetime) -> uuid.UUID:
    """The row a token names; ``token_invalid`` for anything not ours, ``token_expired``
    for one of ours past its life."""
    import jwt

    with google_errors(VerificationApiError, model.INTERNAL):
        key = tokens.hs256_key(deps.signing_key())
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            audience=model.TOKEN_ISSUER,
            issuer=model.TOKEN_ISSUER,
            options={"require": ["exp", "jti"], "verify_exp": False, "verify_iat": False},
        )
        token_id = uuid.UUID(str(claims["jti"]))
    except (jwt.PyJWTError, ValueError) as exc:
        raise VerificationApiError(400, model.TOKEN_INVALID, "invalid verification token") from exc
    if int(claims["exp"]) <= int(now.timestamp()):
        raise VerificationApiError(400, model.TOKEN_EXPIRED, "verification token expired")
    return token_id


def certificate(deps: Deps, request: JsonRequest, now: datetime) -> dict[str, str]:
    """``POST /api/certificate``: a token and ``ekeyhmac`` for a certificate (docs/api.md).

    The token is claimed and the certificate signed in one transaction: if KMS cannot sign
    (503) the claim rolls back and the retry works, as Google claims last for that reason
    (certapi/certificate.go). A token is good for one certificate (``token_invalid`` after).
    """
    settings = deps.settings
    app = require_app(deps, request)
    refuse: Callable[[int, str], VerificationApiError] = lambda status, message: (  # noqa: E731
        VerificationApiError(status, model.TOKEN_INVALID, message)
    )
    asked = model.parse_certificate(model.decode_json(request, model.CERTIFICATE_FIELDS, refuse))
    token_id = _token_id(deps, asked.token, now)
    with (
        google_errors(VerificationApiError, model.INTERNAL),
        db.transaction(settings.database) as cur,
    ):
        claim = sql.claim_token(cur, token_id, app, now)
        if claim.outcome == sql.CLAIMED:
            claims = model.certificate_claims(
                issuer(settings), claim.report_type, claim.symptom_onset, asked.ekeyhmac, now
            )
            signed = model.es256_jwt(
                settings.verification.certificate_kid, claims, deps.sign_certificate
            )
    if claim.outcome == sql.EXPIRED:
        raise VerificationApiError(400, model.TOKEN_EXPIRED, "verification token expired")
    if claim.outcome != sql.CLAIMED:
        raise VerificationApiError(400, model.TOKEN_INVALID, "verification token invalid")
    emit("verification_certificate_issued", now=now)
    return {"certificate": signed}
