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
from datetime import UTC, datetime, timedelta
from typing import Any

from covidtracer import db, logs, ncts
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


def _register_limit(settings: EnfSettings, guarded: bool) -> Limit:
    """Registrations completed per source address: fewer while the guessing guard is up,
    since each is worth a few guesses (one bucket; only the allowance shrinks)."""
    t = settings.tokens
    allowed = t.register_per_ip_guarded if guarded else t.register_per_ip
    return Limit("register-ip", allowed, t.register_ip_window_seconds)


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

    Counted nowhere: a nonce is one small row, deleted within the hour unless a device
    attests it, and the edge's rate rule bounds how fast one address asks. (Counting nonces
    per address let anyone behind a carrier NAT address stop every install from it.)
    """
    nonce = deps.token_hex(32)
    with db.autocommit(deps.settings.database) as cur:
        sql.insert_registration(cur, deps.new_id(), nonce, now)
    return nonce


def complete_registration(deps: Deps, request: ApiRequest, now: datetime) -> dict[str, str]:
    """``PUT /register``: attest the device for the nonce, then issue its tokens.

    Only a registration completed counts against its source address (fewer are allowed
    while the guessing guard is up there or country-wide): a device that fails attestation,
    an attestation provider outage and a nonce another request completed first are all
    refunded. Raises ``NotFound`` for an unknown, used or expired nonce, ``Forbidden`` when
    the attestation fails (the nonce stays usable until it expires), ``TooManyRequests``.
    """
    settings = deps.settings
    registration = model.parse_registration(request.body, settings.attestation.platforms)
    issued_after = now - timedelta(seconds=settings.tokens.nonce_ttl_seconds)
    with db.autocommit(settings.database) as cur:
        registration_id = sql.pending_registration(cur, registration.nonce, issued_after)
        guarded = (
            registration_id is not None
            and _guard_until(cur, settings, request.source_ip, now) is not None
        )
    if registration_id is None:
        raise NotFound("Invalid or expired nonce")
    with counted(_OwnStatementCounters(settings), now) as tally:
        tally.count([(_register_limit(settings, guarded), request.source_ip)])
        try:
            deps.verifier(registration.platform).verify(
                registration.device_verification_payload, registration.nonce, now
            )
        except Forbidden:
            tally.refund()  # a device that cannot attest registers nothing
            raise
        secret = deps.token_hex(32)
        # The signing key is read before the registration commits: if Secrets Manager is
        # down the answer is a 503 and the nonce stays usable for the retry.
        key = deps.signing_key()
        with db.transaction(settings.database) as cur:
            completed = sql.complete_registration(
                cur, registration_id, registration.nonce, tokens.refresh_hash(secret), now
            )
        if not completed:
            tally.refund()
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


# Guessing upload codes (docs/operations.md §10). The guard is a row of ``rate_limits``
# whose expiry is when it ends; the metric feeds the observability stack's alarm.
VERIFY_GUARD = "verify-guard"
GUESS_METRIC = "EnfUploadCodeGuesses"


def _failure_limits(settings: EnfSettings) -> tuple[Limit, Limit]:
    """Wrong codes per source address and in all: thresholds of the guard, never refusals."""
    t = settings.tokens
    window = t.verify_failure_window_seconds
    return (
        Limit("verify-failures-ip", t.verify_failures_per_ip, window),
        Limit("verify-failures", t.verify_failures_global, window),
    )


def _guard_until(cur: Any, settings: EnfSettings, source_ip: str, now: datetime) -> datetime | None:
    """When the guessing guard ends for a request from ``source_ip``, if it is up: the
    country-wide one (raised for a day when wrong codes in all cross their threshold), or the
    address's own (its wrong codes this window reached its budget: until the window ends)."""
    per_ip, country_until, wrong_here = _guessing(cur, settings, source_ip, now)
    ends = [country_until]
    if wrong_here >= per_ip.max_hits:
        ends.append(datetime.fromtimestamp(per_ip.window_end(int(now.timestamp())), UTC))
    return max((end for end in ends if end is not None), default=None)


def _guessing(
    cur: Any, settings: EnfSettings, source_ip: str, now: datetime
) -> tuple[Limit, datetime | None, int]:
    """(the per-address limit, the end of the country-wide guard if it is up, the wrong
    codes from ``source_ip`` this window)."""
    per_ip, _ = _failure_limits(settings)
    bucket = per_ip.bucket(source_ip, int(now.timestamp()))
    wrong_here = sql.live_counts(cur, [bucket], now).get(bucket, 0)
    return per_ip, sql.guard_until(cur, VERIFY_GUARD, now), wrong_here


def record_wrong_code(cur: Any, settings: EnfSettings, source_ip: str, now: datetime) -> None:
    """A wrong code of either contract counts against its address and in all. While the
    count in all is at its threshold, every further one keeps the country-wide guard up for
    a full guard period, so an ongoing guesser never finds it down."""
    per_ip, country = _failure_limits(settings)
    tally = Tally(sql.SqlCounters(cur), now)
    tally.note(per_ip, source_ip)
    if tally.note(country, "all") >= country.max_hits:
        until = now + timedelta(hours=settings.tokens.verify_guard_hours)
        sql.raise_guard(cur, VERIFY_GUARD, until)


def report_wrong_code(stage: str, reason: str, now: datetime, logger: str) -> None:
    """After its transaction commits: the guessing metric (its alarm) and the event."""
    logs.metric(GUESS_METRIC, 1, stage=stage, logger=logger, message="wrong upload code",
                reason=reason)  # fmt: skip
    emit("upload_code_rejected", categories={"reason": reason}, now=now)


def address_retry_after(
    cur: Any, settings: EnfSettings, source_ip: str, now: datetime
) -> int | None:
    """For a contract without registrations (Google's ``POST /api/verify``): seconds until
    ``source_ip`` may try a code again, once its wrong codes this window reached its
    allowance (fewer while the country-wide guard is up), else ``None``. Only the address's
    own wrong codes refuse it; wrong codes in all never refuse anyone."""
    per_ip, country_until, wrong_here = _guessing(cur, settings, source_ip, now)
    allowance = settings.tokens.verify_guarded_failures if country_until else per_ip.max_hits
    if wrong_here >= allowance:
        return per_ip.retry_after(int(now.timestamp()))
    return None


def _upload_token_for(
    deps: Deps,
    cur: Any,
    registration: sql.VerifyState,
    registration_id: uuid.UUID,
    digest: bytes,
    now: datetime,
) -> tuple[uuid.UUID | DomainError, bool]:
    """(the upload token or the refusal, whether it was a wrong code).

    A code claimed now gets a new token; a code this registration claimed before gets the
    same token again while it lives (the answer to the first verify was lost, or its upload
    is being retried), so a repeat is never a wrong code. Any other code is wrong: expired
    (``Gone``), unknown or claimed by another registration (``Forbidden``).
    """
    claimed = sql.claim_code(cur, digest, now)
    if claimed is not None:
        token = deps.new_id()
        lifetime = timedelta(hours=deps.settings.tokens.upload_token_ttl_hours)
        sql.insert_upload_token(cur, token, registration_id, claimed, now, now + lifetime)
        if registration.failures_since_success:
            sql.record_verify_success(cur, registration_id)
        return token, False
    issued = sql.issued_token(cur, digest, registration_id)
    if issued is not None:
        return (issued.token if issued.expires_at > now else Gone()), False
    return (Gone() if sql.code_expired_unclaimed(cur, digest, now) else Forbidden()), True


def verify_code(deps: Deps, request: ApiRequest, now: datetime) -> uuid.UUID:
    """``POST /exposures/verify``: exchange a code (by the app's hash) for an upload token.

    Safe to repeat: the registration that claimed a code gets the same token for it again.
    Only the registration's own wrong codes can refuse it (one attempt a second after a
    wrong one, a daily cap, and while the guessing guard is up a few since its last right
    code): every code within them is looked up, so a right code is never refused by what
    others used up. Each wrong code counts against its address and in all; crossing either
    threshold raises the guard (``_guard_until``) and is reported as a metric.

    Raises ``TooManyRequests`` (the registration must wait), ``Forbidden`` for an unknown
    or used code, ``Gone`` for an expired one.
    """
    settings = deps.settings
    app_hash = model.parse_app_hash(request.body)
    registration_id = _access(deps, request.bearer, now)
    digest = code_hmac(deps.code_hash_key(), app_hash)
    t = settings.tokens
    with db.transaction(settings.database) as cur:
        state = sql.lock_verify_state(cur, registration_id)
        if state is None:
            raise Unauthorized()
        retry_after = model.verify_retry_after(
            last_failure_at=state.last_failure_at,
            failure_day=state.failure_day,
            failures=state.failures,
            failures_since_success=state.failures_since_success,
            now=now,
            min_interval_seconds=t.verify_min_interval_seconds,
            daily_failures=t.verify_daily_failures,
            guarded_failures=t.verify_guarded_failures,
            # Read only where it can matter: the guard limits a registration's wrong codes
            # since its last right one, and most have none.
            guarded_until=(
                _guard_until(cur, settings, request.source_ip, now)
                if state.failures_since_success >= t.verify_guarded_failures
                else None
            ),
        )
        if retry_after is not None:
            emit("upload_code_rejected", categories={"reason": "rate_limited"}, now=now)
            raise TooManyRequests(retry_after)
        outcome, wrong = _upload_token_for(deps, cur, state, registration_id, digest, now)
        if wrong:
            today = now.date()
            failures = state.failures + 1 if state.failure_day == today else 1
            sql.record_verify_failure(cur, registration_id, now, today, failures)
            record_wrong_code(cur, settings, request.source_ip, now)
    if isinstance(outcome, DomainError):
        reason = "expired" if isinstance(outcome, Gone) else "unknown"
        if wrong:
            report_wrong_code(settings.stage, reason, now, __name__)
        else:
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
    deps: Deps,
    registration_id: uuid.UUID,
    source_ip: str,
    action: tuple[str, int, int],
    now: datetime,
) -> Iterator[Any]:
    """The use case's transaction, entered only if the live registration did not do the
    action (its name, interval in seconds, allowance per address) in the last interval and
    its source address has not used up its allowance this window (``TooManyRequests`` then,
    and neither is counted: the transaction rolls back, as it does when the block fails)."""
    name, interval, per_ip = action
    settings = deps.settings
    with db.transaction(settings.database) as cur:
        _require_registration(cur, registration_id)
        if not sql.take_action(cur, registration_id, name, now, now - timedelta(seconds=interval)):
            raise TooManyRequests(interval)
        # Registrations are cheap: one address must not pump actions through many of them.
        kind = name.partition(":")[0]
        limit = Limit(f"{kind}-ip", per_ip, settings.per_ip_window_seconds)
        Tally(sql.SqlCounters(cur), now).count([(limit, source_ip)])
        yield cur


def record_metric(deps: Deps, request: ApiRequest, now: datetime) -> None:
    """``POST /metrics``: count an allowed event at most once per its interval per device,
    and at most ``metrics_per_ip`` an hour per source address."""
    settings = deps.settings
    registration_id = _access(deps, request.bearer, now)
    event = model.parse_metric(request.body, settings.metrics_intervals)
    interval = settings.metrics_intervals[event.event]
    action = (f"metric:{event.event}", interval, settings.metrics_per_ip)
    with _once_per_interval(deps, registration_id, request.source_ip, action, now) as cur:
        sql.count_metric(cur, now.date(), event.event, event.os, event.version)
    emit(
        "enf_metric_received",
        now=now,
        categories={"metric": event.event, "os": event.os, "app_version": event.version},
    )


def request_callback(deps: Deps, request: ApiRequest, now: datetime) -> None:
    """``POST /callback``: forward a call-back request to NCTS (once an interval per
    registration, ``callback_per_ip`` an hour per source address).

    Raises ``Disabled`` when the notification settings switch call-backs off, and
    ``Unavailable`` when NCTS is down (the counts are rolled back with it).
    """
    if not deps.documents.notification().value().get("callbackEnabled"):
        raise Disabled()
    settings = deps.settings
    registration_id = _access(deps, request.bearer, now)
    callback = model.parse_callback(request.body)
    action = ("callback", settings.callback_interval_seconds, settings.callback_per_ip)
    with _once_per_interval(deps, registration_id, request.source_ip, action, now):
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
