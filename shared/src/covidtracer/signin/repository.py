"""DynamoDB adapters of sign-in: sign-in records (``SIGN_IN_SESSIONS_TABLE``) and ``Users`` rows.

Each port has an in-memory twin here (``Memory…``) for fast unit tests of the rules that
use it; one contract test runs both against moto. Library errors become domain errors:
a failed condition means what the caller asked for is refused, anything else is
``Unavailable("dynamodb:<table>")``. Only the wiring and the stores' callers import this
module, on first use (pynamodb costs ~150 ms at cold start).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException, UpdateError
from pynamodb.models import Model

from covidtracer import dynamo
from covidtracer.signin.model import SignInRecord, StaleSession

LATEST_PREFIX = "latest#"


class SignInRecords(Protocol):
    def add(self, record: SignInRecord) -> None:
        """Stores the record and makes it its email's current one (a resend supersedes)."""

    def get(self, verification_id: str) -> SignInRecord | None: ...
    def current(self, email_key: str) -> str | None:
        """The verificationId of the email's latest sign-in."""

    def replace_session(self, record: SignInRecord, new_session: str) -> None:
        """Raises StaleSession when the stored session is no longer ``record.session``."""

    def delete(self, verification_id: str) -> None: ...


class Users(Protocol):
    def record_sign_in(self, user_id: str, email: str, at: str) -> None:
        """Upserts the row for a sign-in at ``at`` (ISO-8601 UTC), idempotently."""


# ---------------------------------------------------------------------------- sign-in records


class SignInItem(Model):
    verificationId = UnicodeAttribute(hash_key=True)  # noqa: N815 - the table's key
    userId = UnicodeAttribute()  # noqa: N815
    emailKey = UnicodeAttribute()  # noqa: N815
    clientId = UnicodeAttribute()  # noqa: N815
    session = UnicodeAttribute()
    createdAt = NumberAttribute()  # noqa: N815
    expiresAt = NumberAttribute()  # noqa: N815 - TTL attribute


class LatestSignInItem(Model):
    """An email's current sign-in, in the same table under ``latest#<email key>``."""

    verificationId = UnicodeAttribute(hash_key=True)  # noqa: N815 - "latest#<email key>"
    current = UnicodeAttribute()
    expiresAt = NumberAttribute()  # noqa: N815 - TTL attribute


def _to_record(item: SignInItem) -> SignInRecord:
    # NumberAttribute is typed float; the record holds whole epoch seconds.
    return dynamo.record_of(
        SignInRecord, item, created_at=int(item.createdAt), expires_at=int(item.expiresAt)
    )


class DynamoSignInRecords:
    """Sign-in records in ``SIGN_IN_SESSIONS_TABLE`` (key ``verificationId``, TTL ``expiresAt``)."""

    def __init__(self, table_name: str) -> None:
        self._model = dynamo.bind(SignInItem, table_name)
        self._latest = dynamo.bind(LatestSignInItem, table_name)

    def add(self, record: SignInRecord) -> None:
        item = dynamo.item_of(self._model, record)
        latest = self._latest(
            LATEST_PREFIX + record.email_key,
            current=record.verification_id,
            expiresAt=record.expires_at,
        )
        try:
            item.save(condition=self._model.verificationId.does_not_exist())
            latest.save()
        except PynamoDBException as error:
            raise dynamo.unavailable("sign_in_sessions", error) from error

    def current(self, email_key: str) -> str | None:
        latest = dynamo.get_or_none(self._latest, LATEST_PREFIX + email_key, "sign_in_sessions")
        return None if latest is None else str(latest.current)

    def get(self, verification_id: str) -> SignInRecord | None:
        return dynamo.get_record(self._model, verification_id, "sign_in_sessions", _to_record)

    def replace_session(self, record: SignInRecord, new_session: str) -> None:
        item = self._model(record.verification_id)
        try:
            item.update(
                actions=[self._model.session.set(new_session)],
                condition=self._model.session == record.session,
            )
        except UpdateError as error:
            if dynamo.is_conditional_check_failure(error):
                raise StaleSession from error
            raise dynamo.unavailable("sign_in_sessions", error) from error
        except PynamoDBException as error:
            raise dynamo.unavailable("sign_in_sessions", error) from error

    def delete(self, verification_id: str) -> None:
        try:
            self._model(verification_id).delete()
        except PynamoDBException as error:
            raise dynamo.unavailable("sign_in_sessions", error) from error


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


class UserItem(Model):
    userId = UnicodeAttribute(hash_key=True)  # noqa: N815 - the table's key
    email = UnicodeAttribute(null=True)  # the `email` index's key
    emailVerified = BooleanAttribute(null=True)  # noqa: N815
    createdAt = UnicodeAttribute(null=True)  # noqa: N815
    lastSignInAt = UnicodeAttribute(null=True)  # noqa: N815


@dataclass(frozen=True)
class UserRow:
    user_id: str
    email: str
    email_verified: bool
    created_at: str
    last_sign_in_at: str


def _to_row(item: UserItem) -> UserRow:
    return UserRow(
        item.userId,
        item.email or "",
        bool(item.emailVerified),
        item.createdAt or "",
        item.lastSignInAt or "",
    )


class DynamoUsers:
    """The ``Users`` table (key ``userId``, GSI ``email``)."""

    def __init__(self, table_name: str) -> None:
        self._model = dynamo.bind(UserItem, table_name)

    def record_sign_in(self, user_id: str, email: str, at: str) -> None:
        """Upserts the row for a sign-in at ``at`` (ISO-8601 UTC). Idempotent, and a late
        redelivery of an older sign-in never moves ``lastSignInAt`` or ``email`` back."""
        model = self._model
        item = model(user_id)
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
        except UpdateError as error:
            if not dynamo.is_conditional_check_failure(error):
                raise dynamo.unavailable("users", error) from error
        except PynamoDBException as error:
            raise dynamo.unavailable("users", error) from error

    def get(self, user_id: str) -> UserRow | None:
        return dynamo.get_record(self._model, user_id, "users", _to_row)
