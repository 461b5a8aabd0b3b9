"""DynamoDB adapters of sign-in: sign-in records, throttle counters, ``Users`` rows, and the
local Cognito driver's sessions. pynamodb is imported on first use (cold start).

Each port has an in-memory twin here (``Memory…``) for fast unit tests of the rules that
use it; one contract test runs both against moto. Library errors become domain errors:
a failed condition means what the caller asked for is refused, anything else is
``Unavailable("dynamodb")``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, Protocol

from covidtracer.errors import Unavailable
from covidtracer.settings import AwsSettings

# Fail fast: the caller is better served by a quick 503 than a hung sign-in.


@dataclass(frozen=True)
class SignInRecord:
    """The server side of a ``verificationId``: whose sign-in it is and Cognito's session."""

    verification_id: str
    user_id: str
    email_key: str
    client_id: str
    session: str
    created_at: int
    expires_at: int


class StaleSession(Exception):
    """The record's session changed under us (a concurrent confirm won the race)."""


class SignInRecords(Protocol):
    def add(self, record: SignInRecord) -> None:
        """Stores the record and makes it its email's current one (a resend supersedes)."""

    def get(self, verification_id: str) -> SignInRecord | None: ...
    def current(self, email_key: str) -> str | None:
        """The verificationId of the email's latest sign-in."""

    def replace_session(self, record: SignInRecord, new_session: str) -> None:
        """Raises StaleSession when the stored session is no longer ``record.session``."""

    def delete(self, verification_id: str) -> None: ...


@contextlib.contextmanager
def _dynamodb() -> Iterator[None]:
    from pynamodb.exceptions import PynamoDBException

    try:
        yield
    except PynamoDBException as exc:
        raise Unavailable("dynamodb") from exc


def _is_condition_failure(exc: Exception) -> bool:
    from covidtracer import dynamo

    return dynamo.is_conditional_check_failure(exc)  # type: ignore[arg-type]


def _get_or_none(model: Any, key: str) -> Any:
    """The item under ``key`` (strongly consistent), or None."""
    with _dynamodb():
        try:
            return model.get(key, consistent_read=True)
        except model.DoesNotExist:
            return None


def _meta(table: str, aws: AwsSettings) -> type:
    from covidtracer import dynamo  # imports pynamodb: on first use only

    return dynamo.meta(table, aws)


# ---------------------------------------------------------------------------- sign-in records


@cache
def _sign_in_model(table: str, aws: AwsSettings) -> Any:
    from pynamodb.attributes import NumberAttribute, UnicodeAttribute
    from pynamodb.models import Model

    class SignInItem(Model):
        Meta = _meta(table, aws)  # type: ignore[assignment]
        verificationId = UnicodeAttribute(hash_key=True)  # noqa: N815 - the table's key
        userId = UnicodeAttribute()  # noqa: N815
        emailKey = UnicodeAttribute()  # noqa: N815
        clientId = UnicodeAttribute()  # noqa: N815
        session = UnicodeAttribute()
        createdAt = NumberAttribute()  # noqa: N815
        expiresAt = NumberAttribute()  # noqa: N815 - TTL attribute

    return SignInItem


@cache
def _latest_sign_in_model(table: str, aws: AwsSettings) -> Any:
    from pynamodb.attributes import NumberAttribute, UnicodeAttribute
    from pynamodb.models import Model

    class LatestSignInItem(Model):
        Meta = _meta(table, aws)  # type: ignore[assignment]
        verificationId = UnicodeAttribute(hash_key=True)  # noqa: N815 - "latest#<email key>"
        current = UnicodeAttribute()
        expiresAt = NumberAttribute()  # noqa: N815 - TTL attribute

    return LatestSignInItem


LATEST_PREFIX = "latest#"


class DynamoSignInRecords:
    """Sign-in records in ``SIGN_IN_SESSIONS_TABLE`` (key ``verificationId``, TTL ``expiresAt``)."""

    def __init__(self, table: str, aws: AwsSettings) -> None:
        self._model = _sign_in_model(table, aws)
        self._latest = _latest_sign_in_model(table, aws)

    def add(self, record: SignInRecord) -> None:
        item = self._model(
            record.verification_id,
            userId=record.user_id,
            emailKey=record.email_key,
            clientId=record.client_id,
            session=record.session,
            createdAt=record.created_at,
            expiresAt=record.expires_at,
        )
        latest = self._latest(
            LATEST_PREFIX + record.email_key,
            current=record.verification_id,
            expiresAt=record.expires_at,
        )
        with _dynamodb():
            item.save(condition=self._model.verificationId.does_not_exist())
            latest.save()

    def current(self, email_key: str) -> str | None:
        latest = _get_or_none(self._latest, LATEST_PREFIX + email_key)
        return None if latest is None else str(latest.current)

    def get(self, verification_id: str) -> SignInRecord | None:
        item = _get_or_none(self._model, verification_id)
        if item is None:
            return None
        return SignInRecord(
            verification_id=item.verificationId,
            user_id=item.userId,
            email_key=item.emailKey,
            client_id=item.clientId,
            session=item.session,
            created_at=int(item.createdAt),
            expires_at=int(item.expiresAt),
        )

    def replace_session(self, record: SignInRecord, new_session: str) -> None:
        from pynamodb.exceptions import UpdateError

        item = self._model(record.verification_id)
        with _dynamodb():  # StaleSession is no pynamodb error: it passes through
            try:
                item.update(
                    actions=[self._model.session.set(new_session)],
                    condition=self._model.session == record.session,
                )
            except UpdateError as exc:
                if _is_condition_failure(exc):
                    raise StaleSession from exc
                raise

    def delete(self, verification_id: str) -> None:
        with _dynamodb():
            self._model(verification_id).delete()


class MemorySignInRecords:
    def __init__(self) -> None:
        self.items: dict[str, SignInRecord] = {}
        self.latest: dict[str, str] = {}

    def add(self, record: SignInRecord) -> None:
        self.items[record.verification_id] = record
        self.latest[record.email_key] = record.verification_id

    def current(self, email_key: str) -> str | None:
        return self.latest.get(email_key)

    def get(self, verification_id: str) -> SignInRecord | None:
        return self.items.get(verification_id)

    def replace_session(self, record: SignInRecord, new_session: str) -> None:
        current = self.items.get(record.verification_id)
        if current is None or current.session != record.session:
            raise StaleSession
        self.items[record.verification_id] = replace(current, session=new_session)

    def delete(self, verification_id: str) -> None:
        self.items.pop(verification_id, None)


# ---------------------------------------------------------------------------- users


@cache
def _user_model(table: str, aws: AwsSettings) -> Any:
    from pynamodb.attributes import BooleanAttribute, UnicodeAttribute
    from pynamodb.models import Model

    class UserItem(Model):
        Meta = _meta(table, aws)  # type: ignore[assignment]
        userId = UnicodeAttribute(hash_key=True)  # noqa: N815 - the table's key
        email = UnicodeAttribute(null=True)  # the `email` index's key
        emailVerified = BooleanAttribute(null=True)  # noqa: N815
        createdAt = UnicodeAttribute(null=True)  # noqa: N815
        lastSignInAt = UnicodeAttribute(null=True)  # noqa: N815

    return UserItem


@dataclass(frozen=True)
class UserRow:
    user_id: str
    email: str
    email_verified: bool
    created_at: str
    last_sign_in_at: str


class DynamoUsers:
    """The ``Users`` table (key ``userId``, GSI ``email``)."""

    def __init__(self, table: str, aws: AwsSettings) -> None:
        self._model = _user_model(table, aws)

    def record_sign_in(self, user_id: str, email: str, at: str) -> None:
        """Upserts the row for a sign-in at ``at`` (ISO-8601 UTC). Idempotent, and a late
        redelivery of an older sign-in never moves ``lastSignInAt`` or ``email`` back."""
        from pynamodb.exceptions import UpdateError

        model = self._model
        item = model(user_id)
        with _dynamodb():
            try:
                item.update(
                    actions=[
                        model.email.set(email),
                        model.emailVerified.set(True),
                        model.lastSignInAt.set(at),
                        model.createdAt.set(model.createdAt | at),
                    ],
                    condition=model.lastSignInAt.does_not_exist() | (model.lastSignInAt <= at),
                )
            except UpdateError as exc:
                if not _is_condition_failure(exc):
                    raise

    def get(self, user_id: str) -> UserRow | None:
        item = _get_or_none(self._model, user_id)
        if item is None:
            return None
        return UserRow(
            item.userId,
            item.email or "",
            bool(item.emailVerified),
            item.createdAt or "",
            item.lastSignInAt or "",
        )


# ---------------------------------------------------------------------------- local Cognito


LOCAL_SESSION_PREFIX = "cognito-local#"


@dataclass(frozen=True)
class LocalSession:
    """What Cognito keeps behind one opaque session string of a CUSTOM_AUTH flow."""

    session_id: str
    username: str
    user_id: str
    client_id: str
    history: str  # JSON list of {challengeName, challengeResult, challengeMetadata}
    private_parameters: str  # JSON object from CreateAuthChallenge
    metadata: str  # challengeMetadata of the pending challenge
    expires_at: int


@cache
def _local_session_model(table: str, aws: AwsSettings) -> Any:
    from pynamodb.attributes import NumberAttribute, UnicodeAttribute
    from pynamodb.models import Model

    class LocalSessionItem(Model):
        Meta = _meta(table, aws)  # type: ignore[assignment]
        verificationId = UnicodeAttribute(hash_key=True)  # noqa: N815 - the table's key
        username = UnicodeAttribute()
        userId = UnicodeAttribute()  # noqa: N815
        clientId = UnicodeAttribute()  # noqa: N815
        history = UnicodeAttribute()
        privateParameters = UnicodeAttribute()  # noqa: N815
        challengeMetadata = UnicodeAttribute()  # noqa: N815
        expiresAt = NumberAttribute()  # noqa: N815 - TTL attribute

    return LocalSessionItem


class DynamoLocalSessions:
    """The local driver's Cognito sessions, as items of the sign-in table under their own
    key prefix: they must outlive one process, as Cognito's do."""

    def __init__(self, table: str, aws: AwsSettings) -> None:
        self._model = _local_session_model(table, aws)

    def add(self, session: LocalSession) -> None:
        item = self._model(
            LOCAL_SESSION_PREFIX + session.session_id,
            username=session.username,
            userId=session.user_id,
            clientId=session.client_id,
            history=session.history,
            privateParameters=session.private_parameters,
            challengeMetadata=session.metadata,
            expiresAt=session.expires_at,
        )
        with _dynamodb():
            item.save()

    def take(self, session_id: str) -> LocalSession | None:
        """Reads and deletes a session: each Cognito session string answers once."""
        from pynamodb.exceptions import DeleteError

        item = _get_or_none(self._model, LOCAL_SESSION_PREFIX + session_id)
        if item is None:
            return None
        with _dynamodb():
            try:
                item.delete(condition=self._model.verificationId.exists())
            except DeleteError as exc:
                if _is_condition_failure(exc):
                    return None  # a concurrent answer took it first
                raise
        return LocalSession(
            session_id=session_id,
            username=item.username,
            user_id=item.userId,
            client_id=item.clientId,
            history=item.history,
            private_parameters=item.privateParameters,
            metadata=item.challengeMetadata,
            expires_at=int(item.expiresAt),
        )
