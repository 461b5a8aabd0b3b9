"""Use cases of the ENF API (DESIGN §4), each ``f(deps, request, now)``: ``deps`` (`Deps`)
holds the settings and every adapter, ``request`` what the handler decoded (`ApiRequest`;
``None`` for a scheduled job).

Each use case runs its statements in one transaction and raises domain errors; where a
refusal must still be recorded (a wrong code counts against the daily cap) the error is
raised after the commit. Codes, keys, phones and tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from covidtracer import db, ncts
from covidtracer.analytics.emitter import emit
from covidtracer.enffiles import service as files
from covidtracer.enfkeys import client_config_store, model, tokens
from covidtracer.enfkeys import db as sql
from covidtracer.enfkeys.attestation import Verifier
from covidtracer.enfkeys.model import ApiRequest
from covidtracer.enfkeys.ncts import Ncts
from covidtracer.enfkeys.settings import MIN_KEY_RETENTION_DAYS, EnfSettings
from covidtracer.enfkeys.sms import SmsSender
from covidtracer.errors import (
    Disabled,
    DomainError,
    Forbidden,
    Gone,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from covidtracer.logs import get_logger
from covidtracer.publish import db as publish_sql
from covidtracer.ratelimit.model import Limit
from covidtracer.ratelimit.service import Tally, counted
from covidtracer.verification import db as verification_sql

log = get_logger(__name__)

# Phones send the symptom-onset date as a local date; the latest calendar date anywhere is
# UTC+14, so "not in the future" is judged against that day.
LATEST_TIMEZONE = timedelta(hours=14)
CODE_DRAWS = 5
TEST_TYPE_NAMES = {number: name for name, number in model.TEST_TYPES.items()}


@dataclass(frozen=True)
class Deps:
    """Everything a use case needs: settings, secrets, partners, randomness (``wiring``)."""

    settings: EnfSettings
    signing_key: Callable[[], str]
    code_hash_key: Callable[[], bytes]
    ncts_api_key: Callable[[], str]
    verifier: Callable[[str], Verifier]
    sms: SmsSender
    ncts: Ncts
    # The exposure configuration and notification settings the stage serves (operator content).
    documents: client_config_store.ClientDocuments
    # The export files: listed and served to live registrations, expired with the keys.
    files: files.Deps
    randbelow: Callable[[int], int] = secrets.randbelow
    token_hex: Callable[[int], str] = secrets.token_hex
    new_id: Callable[[], uuid.UUID] = uuid.uuid4


def key_rules(settings: EnfSettings) -> model.KeyRules:
    """The key-upload rules of ``settings`` (``EnfKeySettings``: declared once, there)."""
    keys = settings.keys
    return model.KeyRules(
        max_keys=keys.max_keys_per_upload,
        max_keys_per_start_interval=keys.max_keys_per_start_interval,
        max_age_days=keys.max_key_age_days,
    )


def code_hmac(key: bytes, app_hash: str) -> bytes:
    """How a code is stored and looked up: HMAC-SHA256 over the hash the app sends."""
    return hmac.new(key, app_hash.encode(), hashlib.sha256).digest()


def _access(deps: Deps, bearer: str | None, now: datetime) -> uuid.UUID:
    return tokens.verify(deps.signing_key(), bearer, kind=tokens.ACCESS, now=now).registration_id


def _require_registration(cur: Any, registration_id: uuid.UUID) -> None:
    """A deleted (or idle-expired) registration's tokens stop working."""
    if not sql.registration_exists(cur, registration_id):
        raise Unauthorized()


def _issue_pair(
    settings: EnfSettings, key: str, registration_id: uuid.UUID, secret: str, now: datetime
) -> dict[str, str]:
    return {
        "token": _access_token(settings, key, registration_id, now),
        "refreshToken": tokens.issue(
            key,
            registration_id,
            kind=tokens.REFRESH,
            now=now,
            lifetime=timedelta(days=settings.tokens.refresh_token_days),
            refresh_secret=secret,
        ),
    }


def _access_token(
    settings: EnfSettings, key: str, registration_id: uuid.UUID, now: datetime
) -> str:
    return tokens.issue(
        key,
        registration_id,
        kind=tokens.ACCESS,
        now=now,
        lifetime=timedelta(minutes=settings.tokens.access_token_minutes),
    )


# ---------------------------------------------------------------------------- registration


def _register_limit(settings: EnfSettings) -> Limit:
    t = settings.tokens
    return Limit("register-ip", t.register_per_ip, t.register_ip_window_seconds)


class _OwnStatementCounters:
    """Rate-limit counters each in a statement of its own, for counts that must outlive
    (or precede) the use case's transaction."""

    def __init__(self, settings: EnfSettings) -> None:
        self._database = settings.database

    def hit(self, bucket: str, expires_at: int) -> int:
        with db.autocommit(self._database) as cur:
            return sql.SqlCounters(cur).hit(bucket, expires_at)

    def release(self, bucket: str) -> None:
        with db.autocommit(self._database) as cur:
            sql.SqlCounters(cur).release(bucket)


def start_registration(deps: Deps, request: ApiRequest, now: datetime) -> str:
    """``POST /register``: a fresh nonce (32 random bytes, hex) for the device to attest.

    Counted per source address and in all, in the same transaction as the new row, so a
    refused registration (``TooManyRequests``) or a failed one counts nothing.
    """
    settings = deps.settings
    nonce = deps.token_hex(32)
    t = settings.tokens
    with db.transaction(settings.database) as cur:
        Tally(sql.SqlCounters(cur), now).count(
            [
                (_register_limit(settings), request.source_ip),
                (Limit("register", t.register_global, t.register_global_window_seconds), "all"),
            ]
        )
        sql.insert_registration(cur, deps.new_id(), nonce, now)
    return nonce


def complete_registration(deps: Deps, request: ApiRequest, now: datetime) -> dict[str, str]:
    """``PUT /register``: attest the device for the nonce, then issue its tokens.

    Each attempt that reaches attestation counts against the source address (an
    attestation provider outage is refunded). Raises ``NotFound`` for an unknown, used or
    expired nonce, ``Forbidden`` when the attestation fails (the nonce stays usable until
    it expires), ``TooManyRequests``.
    """
    settings = deps.settings
    registration = model.parse_registration(request.body, settings.attestation.platforms)
    issued_after = now - timedelta(seconds=settings.tokens.nonce_ttl_seconds)
    with db.transaction(settings.database) as cur:
        registration_id = sql.pending_registration(cur, registration.nonce, issued_after)
    if registration_id is None:
        raise NotFound("Invalid or expired nonce")
    with counted(_OwnStatementCounters(settings), now) as tally:
        tally.count([(_register_limit(settings), request.source_ip)])
        deps.verifier(registration.platform).verify(
            registration.device_verification_payload, registration.nonce, now
        )
    secret = deps.token_hex(32)
    # The signing key is read before the registration commits: if Secrets Manager is down
    # the answer is a 503 and the nonce stays usable for the retry (nothing half-done).
    key = deps.signing_key()
    with db.transaction(settings.database) as cur:
        completed = sql.complete_registration(
            cur, registration_id, registration.nonce, tokens.refresh_hash(secret), now
        )
    if not completed:
        raise NotFound("Invalid or expired nonce")
    emit("enf_device_registered", categories={"platform": registration.platform}, now=now)
    return _issue_pair(settings, key, registration_id, secret, now)


def refresh(deps: Deps, request: ApiRequest, now: datetime) -> str:
    """``POST /refresh``: a new access token for a live registration's refresh token."""
    settings = deps.settings
    key = deps.signing_key()
    claims = tokens.verify(key, request.bearer, kind=tokens.REFRESH, now=now)
    with db.transaction(settings.database) as cur:
        alive = sql.touch_refresh(
            cur, claims.registration_id, tokens.refresh_hash(claims.refresh_secret or ""), now
        )
    if not alive:
        raise Unauthorized()
    return _access_token(settings, key, claims.registration_id, now)


def forget(deps: Deps, request: ApiRequest, now: datetime) -> None:
    """``DELETE /register``: the registration and its upload tokens are deleted."""
    registration_id = _access(deps, request.bearer, now)
    with db.transaction(deps.settings.database) as cur:
        deleted = sql.delete_registration(cur, registration_id)
    if not deleted:
        raise Unauthorized()
    emit("enf_device_unregistered", now=now)


# ---------------------------------------------------------------------------- codes


def require_ncts(deps: Deps, api_key: str | None) -> None:
    """The NCTS credential (the check both APIs share): ``Unauthorized`` for a missing or
    wrong key, ``Unavailable`` when the key cannot be read."""
    ncts.require_api_key(api_key, deps.ncts_api_key)


def request_code(deps: Deps, request: ApiRequest, now: datetime) -> datetime:
    """``POST /ncts/verification-codes``: text a new upload code; returns when it expires.

    The code is stored only as a keyed hash and the text is sent inside the transaction: an
    SMS outage (``Unavailable``) rolls the code back, so no unsent code stays valid.
    """
    settings = deps.settings
    require_ncts(deps, request.api_key)
    code_request = model.parse_code_request(
        request.body,
        today=(now + LATEST_TIMEZONE).date(),
        max_onset_age_days=settings.keys.max_symptom_onset_age_days,
    )
    hours = settings.tokens.code_ttl_hours
    expires_at = now + timedelta(hours=hours)
    key = deps.code_hash_key()
    with db.transaction(settings.database) as cur:
        for _ in range(CODE_DRAWS):
            code = model.new_code(deps.randbelow)
            digest = code_hmac(key, model.app_code_hash(code))
            if sql.insert_code(
                cur, digest, code_request.symptom_onset, code_request.report_type, now, expires_at
            ):
                break
        else:
            log.error("no free upload code after several draws")
            raise Unavailable("codes")
        deps.sms.send(
            code_request.phone, settings.sms.message_template.format(code=code, hours=hours)
        )
    log.info("upload code sent", extra={"report_type": code_request.report_type})
    emit(
        "upload_code_issued",
        categories={"report_type": TEST_TYPE_NAMES.get(code_request.report_type, "")},
        now=now,
    )
    return expires_at


def verify_code(deps: Deps, request: ApiRequest, now: datetime) -> uuid.UUID:
    """``POST /exposures/verify``: exchange a code (by the app's hash) for an upload token.

    Wrong codes are limited per registration (one attempt a second, a daily cap), per
    source address and in all (registrations are free, so the last two bound a guesser who
    makes many). A guess is counted before the code is looked up and refunded when it was
    right: a refused request reveals nothing about the code, and successes are harmless.

    Raises ``TooManyRequests`` (too soon, or a failure allowance used up), ``Forbidden`` for
    an unknown or used code (counted as a failure), ``Gone`` for an expired one.
    """
    settings = deps.settings
    app_hash = model.parse_app_hash(request.body)
    registration_id = _access(deps, request.bearer, now)
    digest = code_hmac(deps.code_hash_key(), app_hash)
    limits = settings.tokens
    outcome: uuid.UUID | DomainError
    with db.transaction(settings.database) as cur:
        state = sql.lock_verify_state(cur, registration_id)
        if state is None:
            raise Unauthorized()
        retry_after = model.verify_retry_after(
            last_attempt_at=state.last_attempt_at,
            failure_day=state.failure_day,
            failures=state.failures,
            now=now,
            min_interval_seconds=limits.verify_min_interval_seconds,
            daily_failures=limits.verify_daily_failures,
        )
        if retry_after is not None:
            emit("upload_code_rejected", categories={"reason": "rate_limited"}, now=now)
            raise TooManyRequests(retry_after)
        guesses = Tally(sql.SqlCounters(cur), now)
        window = limits.verify_failure_window_seconds
        guesses.count(
            [
                (
                    Limit("verify-failures-ip", limits.verify_failures_per_ip, window),
                    request.source_ip,
                ),
                (Limit("verify-failures", limits.verify_failures_global, window), "all"),
            ]
        )
        claimed = sql.claim_code(cur, digest, now)
        if claimed is not None:
            guesses.refund()
            outcome = deps.new_id()
            sql.insert_upload_token(
                cur,
                outcome,
                registration_id,
                claimed,
                now,
                now + timedelta(hours=limits.upload_token_ttl_hours),
            )
            sql.record_verify_attempt(cur, registration_id, now, state.failure_day, state.failures)
        else:
            expired = sql.code_expired_unclaimed(cur, digest, now)
            outcome = Gone() if expired else Forbidden()
            today = now.date()
            failures = state.failures + 1 if state.failure_day == today else 1
            sql.record_verify_attempt(cur, registration_id, now, today, failures)
    if isinstance(outcome, DomainError):
        reason = "expired" if isinstance(outcome, Gone) else "unknown"
        emit("upload_code_rejected", categories={"reason": reason}, now=now)
        raise outcome
    emit("upload_code_verified", now=now)
    return outcome


# ---------------------------------------------------------------------------- key upload


def upload_keys(deps: Deps, request: ApiRequest, now: datetime) -> int:
    """``POST /exposures``: validate, claim the upload token and store the keys, atomically.

    Every rule is checked before the token is touched, and the claim and the insert share
    one transaction, so a rejected or failed upload leaves the token usable. When the answer
    to an upload was lost after it committed (the connection dropped), the phone's retry of
    the same keys is answered as a success (0 new keys), never "token already used".
    Raises ``ValidationError``, ``Forbidden`` (unknown or used token), ``Gone`` (expired
    token). Returns the number of new keys stored.
    """
    settings = deps.settings
    registration_id = _access(deps, request.bearer, now)
    rules = key_rules(settings)
    upload = model.parse_upload(request.body, settings.attestation.platforms, rules)
    model.validate_keys(upload.keys, rules, now)
    deps.verifier(upload.platform).verify(
        upload.device_verification_payload, str(upload.token), now
    )
    digest = model.upload_digest(upload.keys)
    with db.autocommit(settings.database) as cur:
        # One statement claims the token and inserts the keys (one round trip, atomic):
        # an unknown, used or expired token claims and inserts nothing. Upload tokens are
        # deleted with their registration, so a successful claim also proves the
        # registration is alive: the checks below cost queries only when the claim fails.
        stored = sql.claim_and_insert_keys(
            cur,
            upload.token,
            registration_id,
            upload.keys,
            now,
            # The same days the served configuration scores as infectious (item: upload
            # and scoring never disagree); cached, so the hot path reads no parameter.
            infectious_days=deps.documents.exposure().infectious_days,
            digest=digest,
        )
        if stored is not None:
            emit(
                "keys_uploaded",
                counts={"keys": stored},
                categories={"platform": upload.platform},
                now=now,
            )
            return stored
        state = sql.upload_token_state(cur, upload.token, registration_id)
        if state is None:
            _require_registration(cur, registration_id)
            raise Forbidden()
        already_claimed, expires_at = state
        if already_claimed and sql.claimed_by_upload(cur, upload.token, registration_id, digest):
            return 0  # a retry of this very upload, stored before its answer was lost
        if not already_claimed and expires_at <= now:
            raise Gone()
        raise Forbidden()


# ---------------------------------------------------------------------------- export files


def _live_registration(deps: Deps, bearer: str | None, now: datetime) -> None:
    """A valid access token whose registration still exists, else ``Unauthorized``."""
    registration_id = _access(deps, bearer, now)
    # One SELECT on the path every phone polls: no BEGIN/COMMIT round trips around it.
    with db.autocommit(deps.settings.database) as cur:
        _require_registration(cur, registration_id)


def list_files(deps: Deps, request: ApiRequest, now: datetime) -> list[dict[str, Any]]:
    """``GET /exposures`` for a live registration (``enffiles.service.list_files``)."""
    _live_registration(deps, request.bearer, now)
    return files.list_files(deps.files, request.query, now)


def read_file(deps: Deps, request: ApiRequest, now: datetime) -> bytes:
    """``GET /data/{path}`` for a live registration (``enffiles.service.read_file``)."""
    _live_registration(deps, request.bearer, now)
    return files.read_file(deps.files, request.path, now)


# ---------------------------------------------------------------------------- settings, metrics


def notification_config(deps: Deps, request: ApiRequest, now: datetime) -> dict[str, Any]:
    """``GET /settings/notification``: the stage's notification settings (CLIENTS.md shape)."""
    return deps.documents.notification().value()


def exposure_config(deps: Deps, request: ApiRequest, now: datetime) -> dict[str, str]:
    """``GET /settings/exposures``: the stage's exposure configuration as a JSON string.

    One document serves both platforms (each plugin ignores the other's fields); ``os`` is
    checked so a typo shows up as a 400 rather than as a phone that never matches.
    """
    registration_id = _access(deps, request.bearer, now)
    if request.query.get("os") not in (None, *model.METRIC_OS):
        raise ValidationError.of("Os", "The os must be ios or android.")
    with db.autocommit(deps.settings.database) as cur:
        _require_registration(cur, registration_id)
    return {"exposureConfig": deps.documents.exposure().text}


@contextmanager
def _once_per_interval(
    deps: Deps, registration_id: uuid.UUID, action: str, interval: int, now: datetime
) -> Iterator[Any]:
    """The use case's transaction, entered only if the live registration did not do
    ``action`` in the last ``interval`` seconds (``TooManyRequests`` then)."""
    with db.transaction(deps.settings.database) as cur:
        _require_registration(cur, registration_id)
        if not sql.take_action(
            cur, registration_id, action, now, now - timedelta(seconds=interval)
        ):
            raise TooManyRequests(interval)
        yield cur


def record_metric(deps: Deps, request: ApiRequest, now: datetime) -> None:
    """``POST /metrics``: count an allowed event at most once per its interval per device."""
    settings = deps.settings
    registration_id = _access(deps, request.bearer, now)
    event = model.parse_metric(request.body, settings.metrics_intervals)
    interval = settings.metrics_intervals[event.event]
    with _once_per_interval(deps, registration_id, f"metric:{event.event}", interval, now) as cur:
        sql.count_metric(cur, now.date(), event.event, event.os, event.version)
    emit(
        "enf_metric_received",
        now=now,
        categories={"metric": event.event, "os": event.os, "app_version": event.version},
    )


def request_callback(deps: Deps, request: ApiRequest, now: datetime) -> None:
    """``POST /callback``: forward a call-back request to NCTS.

    Raises ``Disabled`` when the notification settings switch call-backs off, and
    ``Unavailable`` when NCTS is down (the rate-limit record is rolled back with it).
    """
    if not deps.documents.notification().value().get("callbackEnabled"):
        raise Disabled()
    registration_id = _access(deps, request.bearer, now)
    callback = model.parse_callback(request.body)
    interval = deps.settings.callback_interval_seconds
    with _once_per_interval(deps, registration_id, "callback", interval, now):
        deps.ncts.request_callback(callback)
    emit("enf_callback_requested", now=now)


# ---------------------------------------------------------------------------- retention


class RetentionTooShort(RuntimeError):
    """Refusing to delete keys younger than the minimum retention."""


def apply_retention(deps: Deps, request: None, now: datetime) -> dict[str, int]:
    """The hourly job: ``cleanup`` of the database, then export files past their retention."""
    deleted = cleanup(deps, request, now)
    deleted["files"] = files.cleanup_files(
        deps.files, deps.settings.export.file_retention_days, now
    )
    return deleted


def cleanup(deps: Deps, request: None, now: datetime) -> dict[str, int]:
    """Delete what is past retention; returns how many rows of each kind went.

    Keys older than ``ENF_KEY_RETENTION_DAYS`` (never under 10 days: settings refuse it and
    so does this guard), codes and upload tokens past their lifetime, nonces never attested
    within the hour, registrations idle longer than a refresh token lives, and Google's
    verification tokens and remembered publish certificates past theirs.
    """
    settings = deps.settings
    retention_days = settings.keys.retention_days
    if retention_days < MIN_KEY_RETENTION_DAYS:
        raise RetentionTooShort(
            f"key retention {retention_days} days is under {MIN_KEY_RETENTION_DAYS}"
        )
    t = settings.tokens
    with db.transaction(settings.database) as cur:
        deleted = {
            "keys": sql.delete_keys_created_before(cur, now - timedelta(days=retention_days)),
            "codes": sql.delete_codes_created_before(cur, now - timedelta(hours=t.code_ttl_hours)),
            "upload_tokens": sql.delete_upload_tokens_created_before(
                cur, now - timedelta(hours=t.upload_token_ttl_hours)
            ),
            "nonces": sql.delete_pending_registrations_before(
                cur, now - timedelta(seconds=t.nonce_ttl_seconds)
            ),
            "registrations": sql.delete_idle_registrations_before(
                cur, now - timedelta(days=t.refresh_token_days)
            ),
            "rate_limits": sql.delete_rate_limits_ended_before(cur, now),
            # Google's contract (covidtracer.verification, covidtracer.publish).
            "verification_tokens": verification_sql.delete_tokens_created_before(
                cur, now - timedelta(hours=settings.verification.token_hours)
            ),
            "publish_certificates": publish_sql.delete_certificates_before(
                cur, now - timedelta(hours=settings.publish.certificate_memory_hours)
            ),
        }
    log.info("enf cleanup", extra={"deleted": deleted})
    return deleted
