"""Use cases of passwordless sign-in (DESIGN §2.1): initiate and confirm.

``initiate`` throttles, finds or creates the account, starts Cognito's CUSTOM_AUTH (the
code is emailed by the CreateAuthChallenge trigger) and stores a sign-in record under a new
opaque ``verificationId``. ``confirm`` answers the challenge with the record's current
Cognito session; a wrong answer stores Cognito's next session, so the app retries with the
same ``verificationId``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from covidtracer import logs, settings
from covidtracer.auth import model
from covidtracer.auth.cognito import CognitoGateway, Retry
from covidtracer.auth.repository import SignInRecord, SignInRecords, StaleSession
from covidtracer.errors import InvalidAuthCode, InvalidAuthSession, MfaEnabled
from covidtracer.ratelimit.model import Limit
from covidtracer.ratelimit.repository import Counters
from covidtracer.ratelimit.service import counted
from covidtracer.settings import SignInSettings

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class Initiated:
    verification_id: str
    user_id: str

    def body(self) -> dict[str, str]:
        return {"verificationId": self.verification_id, "userId": self.user_id}


@dataclass(frozen=True)
class Confirmed:
    access_token: str
    user_id: str

    def body(self) -> dict[str, str]:
        return {"accessToken": self.access_token, "userId": self.user_id}


def _new_verification_id() -> str:
    return secrets.token_urlsafe(32)  # 256 bits: unguessable


class SignIn:
    def __init__(
        self,
        gateway: CognitoGateway,
        records: SignInRecords,
        counters: Counters,
        config: SignInSettings,
        client_ids: Collection[str],
        now: Callable[[], float] = time.time,
        new_verification_id: Callable[[], str] = _new_verification_id,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gateway = gateway
        self._records = records
        self._counters = counters
        self._config = config
        self._client_ids = frozenset(client_ids)
        self._now = now
        self._new_verification_id = new_verification_id
        self._sleep = sleep
        self._monotonic = monotonic

    def initiate(self, body: Mapping[str, Any], source_ip: str) -> Initiated:
        """Raises ValidationError, TooManyRequests, MfaEnabled, Unavailable."""
        started = self._monotonic()
        request = model.parse_initiate(body, self._client_ids)
        config = self._config
        now = self._now()
        window = config.limit_window_seconds
        # Each initiate emails a code, so both count; a refused (429) or failed (503)
        # initiate sent nothing and is refunded (ratelimit.counted).
        with counted(self._counters, datetime.fromtimestamp(now, UTC)) as tally:
            tally.count(
                [
                    (Limit("initiate-ip", config.limit_per_ip, window), source_ip),
                    (Limit("initiate-email", config.limit_per_email, window), request.email),
                ]
            )
            user = self._gateway.find_or_create_user(request.email)
            if user.mfa_enabled:
                raise MfaEnabled(user.user_id)
            session = self._gateway.start_sign_in(user, request.client_id)
        record = SignInRecord(
            verification_id=self._new_verification_id(),
            user_id=user.user_id,
            email_key=model.pseudonym(request.email),
            client_id=request.client_id,
            session=session,
            created_at=int(now),
            expires_at=int(now) + config.session_validity_seconds,
        )
        self._records.add(record)
        log.info("sign-in started")
        # Creating an account costs Cognito calls that finding one does not: answer no
        # sooner than the floor, so timing does not reveal who has an account.
        remaining = config.initiate_min_duration_ms / 1000 - (self._monotonic() - started)
        if remaining > 0:
            self._sleep(remaining)
        return Initiated(record.verification_id, record.user_id)

    def confirm(self, body: Mapping[str, Any]) -> Confirmed:
        """Raises ValidationError, InvalidAuthCode (attempts remain), InvalidAuthSession
        (expired, exhausted, unknown, or not this email's), MfaEnabled, Unavailable."""
        request = model.parse_confirm(body, self._client_ids)
        record = self._records.get(request.verification_id)
        if (
            record is None
            or record.expires_at <= self._now()
            or record.email_key != model.pseudonym(request.email)
            or record.client_id != request.client_id
            # A resend superseded this sign-in: its code must stop working too.
            or self._records.current(record.email_key) != record.verification_id
        ):
            raise InvalidAuthSession
        try:
            result = self._gateway.answer(
                record.user_id, record.client_id, record.session, request.code
            )
        except InvalidAuthSession:
            self._records.delete(record.verification_id)
            log.info("sign-in session ended")
            raise
        if isinstance(result, Retry):
            try:
                self._records.replace_session(record, result.session)
            except StaleSession as exc:
                raise InvalidAuthSession from exc
            log.info("sign-in code wrong")
            raise InvalidAuthCode
        self._records.delete(record.verification_id)
        log.info("sign-in confirmed")
        return Confirmed(result.access_token, record.user_id)


@settings.built_from_settings
def default() -> SignIn:
    """Sign-in wired to Cognito (or the local driver) and DynamoDB from the details settings."""
    from covidtracer.auth.repository import DynamoSignInRecords
    from covidtracer.ratelimit.repository import DynamoCounters

    details = settings.details_settings()
    return SignIn(
        gateway=_gateway(),
        records=DynamoSignInRecords(details.tables.sign_in_sessions, details.aws),
        counters=DynamoCounters(details.tables.rate_limits),
        config=details.sign_in,
        client_ids=details.app_client_ids.values(),
    )


def _gateway() -> CognitoGateway:
    details = settings.details_settings()
    if details.sign_in.cognito_gateway == "aws":
        from covidtracer.auth.cognito import AwsCognito

        return AwsCognito(details.user_pool_id)
    from covidtracer.auth import triggers
    from covidtracer.auth.local_cognito import LocalCognito
    from covidtracer.auth.repository import DynamoLocalSessions

    return LocalCognito(
        user_pool_id=details.user_pool_id,
        region=details.aws.region,
        sessions=DynamoLocalSessions(details.tables.sign_in_sessions, details.aws),
        triggers=triggers.default(),
        session_validity_seconds=details.sign_in.session_validity_seconds,
    )
