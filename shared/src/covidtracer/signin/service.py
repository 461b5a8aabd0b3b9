"""Use cases of passwordless sign-in (DESIGN §2.1): initiate and confirm, each
``f(deps, body, now)``.

``initiate`` throttles, finds or creates the account, starts Cognito's CUSTOM_AUTH (the
code is emailed by the CreateAuthChallenge trigger) and stores a sign-in record under a new
opaque ``verificationId``. ``confirm`` answers the challenge with the record's current
Cognito session; a wrong answer stores Cognito's next session, so the app retries with the
same ``verificationId``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from covidtracer import logs
from covidtracer.errors import InvalidAuthCode, InvalidAuthSession, MfaEnabled
from covidtracer.ratelimit.model import Limit
from covidtracer.ratelimit.service import Tally, counted
from covidtracer.signin import model
from covidtracer.signin.cognito import Retry
from covidtracer.signin.model import SignInRecord, StaleSession
from covidtracer.validation import camel_fields

if TYPE_CHECKING:
    from covidtracer.ratelimit.repository import Counters
    from covidtracer.signin.cognito import CognitoGateway
    from covidtracer.signin.repository import SignInRecords
    from covidtracer.signin.settings import SignInSettings

log = logs.get_logger(__name__)


def _new_verification_id() -> str:
    return secrets.token_urlsafe(32)  # 256 bits: unguessable


@dataclass(frozen=True)
class SignInDeps:
    """Cognito, the sign-in records, the throttle's counters, the knobs, the app clients and
    the stage (the codes metric's dimension); the id source and the clock the response floor
    waits on are parameters too."""

    gateway: CognitoGateway
    records: SignInRecords
    counters: Counters
    config: SignInSettings
    client_ids: frozenset[str]
    stage: str
    new_verification_id: Callable[[], str] = _new_verification_id
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class _Answer:
    """A sign-in step's result; its fields, in camelCase, are the response body."""

    def body(self) -> dict[str, str]:
        return camel_fields(self)


@dataclass(frozen=True)
class Initiated(_Answer):
    verification_id: str
    user_id: str


@dataclass(frozen=True)
class Confirmed(_Answer):
    access_token: str
    user_id: str


DAY_SECONDS = 86_400
CODES_METRIC = "SignInCodesSent"


def _throttle(tally: Tally, config: SignInSettings, email: str, source_ip: str) -> None:
    """Counts an initiate for ``email`` from ``source_ip`` (``TooManyRequests`` when one of
    its limits is used up; every count is refunded with the request's).

    The app's resends come from one address, so the per-email limit is per address: nobody
    elsewhere can use up a person's. Initiates for the email from other addresses beyond a
    threshold mean it is targeted; then every address, the person's own too, may start only
    a few sign-ins for it a day (docs/operations.md §10)."""
    mine = f"{email}\0{source_ip}"
    window = config.limit_window_seconds
    [own] = tally.count([(Limit("initiate-email-ip", config.limit_per_email, window), mine)])
    total = tally.note(Limit("initiate-email", config.email_guard_after, window), email)
    if total - own >= config.email_guard_after:
        tally.count([(Limit("initiate-email-ip-day", config.guarded_per_day, DAY_SECONDS), mine)])


def initiate(
    deps: SignInDeps, body: Mapping[str, Any], now: datetime, *, source_ip: str
) -> Initiated:
    """Raises ValidationError, TooManyRequests, MfaEnabled, Unavailable.

    The sign-in record is stored before Cognito starts the session (which emails the
    code), so a store that is down answers 503 having emailed nothing; every outcome but a
    started sign-in (a 429, a 503) gives back what it counted (``ratelimit.counted``).
    """
    started = deps.monotonic()
    request = model.parse_initiate(body, deps.client_ids)
    config = deps.config
    epoch = int(now.timestamp())
    with counted(deps.counters, now) as tally:
        _throttle(tally, config, request.email, source_ip)
        user = deps.gateway.find_or_create_user(request.email)
        if user.mfa_enabled:
            tally.refund()  # no code is emailed: the person is told to use their app
            raise MfaEnabled(user.user_id)
        record = SignInRecord(
            verification_id=deps.new_verification_id(),
            user_id=user.user_id,
            email_key=model.pseudonym(request.email),
            client_id=request.client_id,
            session=model.PENDING_SESSION,
            created_at=epoch,
            expires_at=epoch + config.session_validity_seconds,
        )
        deps.records.add(record)
        session = deps.gateway.start_sign_in(user, request.client_id)
        deps.records.replace_session(record, session)
    # No limit refuses sign-ins in all (it would refuse everyone): the alarm on this metric
    # tells an operator when codes are being spent on made-up addresses.
    logs.metric(CODES_METRIC, 1, stage=deps.stage, logger=__name__, message="sign-in started")
    # Creating an account costs Cognito calls that finding one does not: answer no
    # sooner than the floor, so timing does not reveal who has an account.
    remaining = config.initiate_min_duration_ms / 1000 - (deps.monotonic() - started)
    if remaining > 0:
        deps.sleep(remaining)
    return Initiated(record.verification_id, record.user_id)


def confirm(deps: SignInDeps, body: Mapping[str, Any], now: datetime) -> Confirmed:
    """Raises ValidationError, InvalidAuthCode (attempts remain), InvalidAuthSession
    (expired, exhausted, unknown, or not this email's), MfaEnabled, Unavailable."""
    request = model.parse_confirm(body, deps.client_ids)
    records = deps.records
    record = records.get(request.verification_id)
    if (
        record is None
        or record.session == model.PENDING_SESSION  # its session never started (a 503)
        or record.expires_at <= now.timestamp()
        or record.email_key != model.pseudonym(request.email)
        or record.client_id != request.client_id
        # A resend superseded this sign-in: its code must stop working too.
        or records.current(record.email_key) != record.verification_id
    ):
        raise InvalidAuthSession
    try:
        result = deps.gateway.answer(record.user_id, record.client_id, record.session, request.code)
    except InvalidAuthSession:
        records.delete(record.verification_id)
        log.info("sign-in session ended")
        raise
    if isinstance(result, Retry):
        try:
            records.replace_session(record, result.session)
        except StaleSession as exc:
            raise InvalidAuthSession from exc
        log.info("sign-in code wrong")
        raise InvalidAuthCode
    records.delete(record.verification_id)
    log.info("sign-in confirmed")
    return Confirmed(result.access_token, record.user_id)
