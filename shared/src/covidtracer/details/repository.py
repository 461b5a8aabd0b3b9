"""I/O adapters of the app API: the ``ExposureEvents`` and ``PersonalDetails`` tables, the
feed bucket and the account-email lookup; each store has an in-memory twin that the same
contract tests run against."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Protocol

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from covidtracer import aws, dynamo
from covidtracer.details.model import (
    EVENT_TEXTS,
    ContactDetails,
    Ethnicity,
    ExposureEvent,
    FeedChanged,
    StoredEvent,
    apply_details,
)
from covidtracer.errors import NotFound, Unavailable
from covidtracer.personaldetails.repository import EthnicityAttribute, PersonalDetailsItem
from covidtracer.settings import AwsSettings
from covidtracer.validation import format_utc, parse_utc


class ExposureEvents(Protocol):
    def get(self, notification_id: str) -> StoredEvent | None: ...

    def put(self, event: ExposureEvent, *, version: str, expires_at: int) -> None:
        """Store (or replace) the event with its push pending."""

    def mark_pushed(self, notification_id: str, version: str) -> None:
        """Clear the pending push, unless the event changed (or went) since ``version``."""

    def mark_published(self, notification_id: str, version: str) -> None:
        """Take the event out of ``pending()``: the feed holds this version and its push is
        done. Does nothing if the push is still pending or the event changed (or went)."""

    def delete(self, notification_id: str) -> bool:
        """Remove the event; ``False`` if there was none."""

    def pending(self) -> Iterator[StoredEvent]:
        """Events stored but not yet confirmed as published and pushed: a sparse index,
        so this reads only them, never the table."""

    def scan(self) -> Iterator[StoredEvent]:
        """Every event: the whole table (only to recreate a lost or unreadable feed)."""


class FeedStore(Protocol):
    """The published feed object. Writes are conditional (optimistic concurrency): a writer
    names the version it read (``None``: there was no object), and ``FeedChanged`` says
    another writer came first."""

    def read(self, key: str) -> tuple[bytes, str] | None:
        """(gzipped JSON, version), or ``None`` when there is no feed yet."""

    def version(self, key: str) -> str | None:
        """The current version without the body; ``None`` when there is no feed yet."""

    def write(
        self, key: str, gzipped_json: bytes, max_age_seconds: int, *, replaces: str | None
    ) -> None:
        """Write the feed if its version is still ``replaces``, else ``FeedChanged``."""


DetailsChanges = Mapping[str, str | Ethnicity | None]


class ContactDetailsStore(Protocol):
    """One ``PersonalDetails`` item per user, written as the item contract of
    ``covidtracer.personaldetails.model`` says (the NCTS export reads it back)."""

    def get(self, user_id: str) -> ContactDetails | None: ...

    def put(self, details: ContactDetails) -> None:
        """Create or replace the whole record."""

    def create(self, details: ContactDetails) -> bool:
        """Store the record unless the user has one already; ``False`` if they had."""

    def update(self, user_id: str, changes: DetailsChanges, updated_at: str) -> ContactDetails:
        """Set the changed fields (``None`` removes one) of an existing record, atomically;
        returns the record as stored. Raises ``NotFound`` when there is none (never an
        upsert: the caller decides whether the change may create a record)."""

    def delete(self, user_id: str) -> bool:
        """Remove the record (its stream REMOVE becomes the export's tombstone); ``False``
        if there was none."""


class AccountEmails(Protocol):
    def email_of(self, user_id: str) -> str | None:
        """The account's sign-in email, or ``None`` if the account does not exist."""


# ---------------------------------------------------------------------------- DynamoDB


PENDING_INDEX = "pending"
PENDING = "1"


class _PendingIndex(GlobalSecondaryIndex["ExposureEventItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = PENDING_INDEX
        projection = AllProjection()

    pending = UnicodeAttribute(hash_key=True)


class ExposureEventItem(Model):
    """One item per notification. No raw GLN: callbacks are checked against ``glnHash``."""

    notificationId = UnicodeAttribute(hash_key=True)  # noqa: N815 - table attribute names
    eventId = UnicodeAttribute()  # noqa: N815
    glnHash = UnicodeAttribute()  # noqa: N815
    start = UnicodeAttribute()
    end = UnicodeAttribute()
    systemNotificationBody = UnicodeAttribute(default="")  # noqa: N815
    appBannerTitle = UnicodeAttribute(default="")  # noqa: N815
    appBannerBody = UnicodeAttribute(default="")  # noqa: N815
    appBannerLinkLabel = UnicodeAttribute(default="")  # noqa: N815
    appBannerLinkUrl = UnicodeAttribute(default="")  # noqa: N815
    appBannerRequestCallbackEnabled = BooleanAttribute(default=False)  # noqa: N815
    pushPending = BooleanAttribute(default=True)  # noqa: N815
    # Present (the constant PENDING) from the write until the feed holds this version and
    # its push is done: the hash key of the sparse index PENDING_INDEX, which therefore
    # holds only those few items (infra/templates/data.yaml).
    pending = UnicodeAttribute(null=True)
    version = UnicodeAttribute()
    # TTL (epoch seconds): the item goes a day after it leaves the feed.
    expiresAt = NumberAttribute()  # noqa: N815
    pending_index = _PendingIndex()


def _to_stored(item: Any) -> StoredEvent:
    start, end = parse_utc(item.start), parse_utc(item.end)
    assert start is not None and end is not None, "stored times are always valid"
    event = ExposureEvent(
        event_id=item.eventId,
        notification_id=item.notificationId,
        gln_hash=item.glnHash,
        start=start,
        end=end,
        texts={name: getattr(item, name) or "" for name in EVENT_TEXTS},
        request_callback_enabled=bool(item.appBannerRequestCallbackEnabled),
    )
    return StoredEvent(event, bool(item.pushPending), item.version, item.pending is not None)


class DynamoExposureEvents:
    """``ExposureEvents`` in DynamoDB; every failure becomes ``Unavailable``."""

    def __init__(self, table_name: str) -> None:
        self._model = dynamo.bind(ExposureEventItem, table_name)

    def get(self, notification_id: str) -> StoredEvent | None:
        try:
            item = self._model.get(notification_id, consistent_read=True)
        except self._model.DoesNotExist:
            return None
        except PynamoDBException as error:
            raise dynamo.unavailable("exposure_events", error) from error
        return _to_stored(item)

    def put(self, event: ExposureEvent, *, version: str, expires_at: int) -> None:
        attributes: dict[str, Any] = {name: event.texts.get(name, "") for name in EVENT_TEXTS}
        item = self._model(
            event.notification_id,
            eventId=event.event_id,
            glnHash=event.gln_hash,
            start=format_utc(event.start),
            end=format_utc(event.end),
            appBannerRequestCallbackEnabled=event.request_callback_enabled,
            pushPending=True,
            pending=PENDING,
            version=version,
            expiresAt=expires_at,
            **attributes,
        )
        try:
            item.save()
        except PynamoDBException as error:
            raise dynamo.unavailable("exposure_events", error) from error

    def mark_pushed(self, notification_id: str, version: str) -> None:
        item = self._model(notification_id)
        try:
            item.update(
                actions=[self._model.pushPending.set(False)],
                condition=self._model.version == version,
            )
        except PynamoDBException as error:
            if dynamo.is_conditional_check_failure(error):
                return  # changed or withdrawn meanwhile: its newer state decides
            raise dynamo.unavailable("exposure_events", error) from error

    def mark_published(self, notification_id: str, version: str) -> None:
        item = self._model(notification_id)
        try:
            item.update(
                actions=[self._model.pending.remove()],
                condition=(self._model.version == version) & (self._model.pushPending == False),  # noqa: E712 - a DynamoDB condition, not a comparison
            )
        except PynamoDBException as error:
            if dynamo.is_conditional_check_failure(error):
                return  # push still pending, or changed or withdrawn meanwhile
            raise dynamo.unavailable("exposure_events", error) from error

    def pending(self) -> Iterator[StoredEvent]:
        try:
            # Model.query with index_name, not the index object: the object is shared by
            # every bound copy of the model and points at the last one bound.
            for item in self._model.query(PENDING, index_name=PENDING_INDEX):
                yield _to_stored(item)
        except PynamoDBException as error:
            raise dynamo.unavailable("exposure_events", error) from error

    def delete(self, notification_id: str) -> bool:
        try:
            self._model(notification_id).delete(condition=self._model.notificationId.exists())
        except PynamoDBException as error:
            if dynamo.is_conditional_check_failure(error):
                return False
            raise dynamo.unavailable("exposure_events", error) from error
        return True

    def scan(self) -> Iterator[StoredEvent]:
        try:
            for item in self._model.scan():
                yield _to_stored(item)
        except PynamoDBException as error:
            raise dynamo.unavailable("exposure_events", error) from error


def _ethnicity_attribute(value: Ethnicity | None) -> EthnicityAttribute | None:
    if value is None:
        return None
    selected, other = list(value.selected), value.other
    return EthnicityAttribute(selected=selected, other=other)  # type: ignore[no-untyped-call]


def _to_details(item: Any) -> ContactDetails:
    ethnicity = None
    if item.ethnicity is not None:
        ethnicity = Ethnicity(tuple(item.ethnicity.selected or ()), item.ethnicity.other)
    return ContactDetails(
        user_id=item.userId,
        email=item.email,
        first_name=item.firstName,
        last_name=item.lastName,
        phone=item.phone,
        updated_at=item.updatedAt,
        middle_name=item.middleName,
        date_of_birth=item.dateOfBirth,
        gender=item.gender,
        ethnicity=ethnicity,
    )


class _AlreadyStored(Exception):
    """A conditional create found the user's record already there."""


class DynamoContactDetails:
    """``PersonalDetails`` in DynamoDB; every failure becomes ``Unavailable``."""

    def __init__(self, table_name: str) -> None:
        self._model = dynamo.bind(PersonalDetailsItem, table_name)

    def get(self, user_id: str) -> ContactDetails | None:
        try:
            item = self._model.get(user_id, consistent_read=True)
        except self._model.DoesNotExist:
            return None
        except PynamoDBException as error:
            raise dynamo.unavailable("personal_details", error) from error
        return _to_details(item)

    def put(self, details: ContactDetails) -> None:
        self._save(details, condition=None)

    def create(self, details: ContactDetails) -> bool:
        try:
            self._save(details, condition=self._model.userId.does_not_exist())
        except _AlreadyStored:
            return False
        return True

    def _save(self, details: ContactDetails, condition: Any) -> None:
        item = self._model(
            details.user_id,
            email=details.email,
            firstName=details.first_name,
            middleName=details.middle_name,
            lastName=details.last_name,
            phone=details.phone,
            dateOfBirth=details.date_of_birth,
            gender=details.gender,
            ethnicity=_ethnicity_attribute(details.ethnicity),
            updatedAt=details.updated_at,
        )
        try:
            item.save(condition=condition)
        except PynamoDBException as error:
            if condition is not None and dynamo.is_conditional_check_failure(error):
                raise _AlreadyStored from error
            raise dynamo.unavailable("personal_details", error) from error

    def update(self, user_id: str, changes: DetailsChanges, updated_at: str) -> ContactDetails:
        model = self._model
        actions: list[Any] = [model.updatedAt.set(updated_at)]
        for name, value in changes.items():
            attribute = getattr(model, name)
            if value is None:
                actions.append(attribute.remove())
            elif isinstance(value, Ethnicity):
                actions.append(attribute.set(_ethnicity_attribute(value)))
            else:
                actions.append(attribute.set(value))
        item = model(user_id)
        try:
            item.update(actions=actions, condition=model.userId.exists())
        except PynamoDBException as error:
            if dynamo.is_conditional_check_failure(error):
                raise NotFound from error
            raise dynamo.unavailable("personal_details", error) from error
        return _to_details(item)

    def delete(self, user_id: str) -> bool:
        try:
            self._model(user_id).delete(condition=self._model.userId.exists())
        except PynamoDBException as error:
            if dynamo.is_conditional_check_failure(error):
                return False
            raise dynamo.unavailable("personal_details", error) from error
        return True


class AccountEmailsFromUsers:
    """The sign-in email of an account: the ``Users`` row (one strongly consistent read),
    else Cognito (``ListUsers`` by ``sub``).

    The row is written by the PostAuthentication consumer, off the sign-in's path, so a
    person who saves their details seconds after their first sign-in may not have one yet;
    Cognito always knows the account but allows few ``ListUsers`` calls per second, so it
    is only the fallback. The access token itself carries no email.
    """

    def __init__(self, users_table: str, user_pool_id: str, aws_config: AwsSettings) -> None:
        from covidtracer.signin.repository import DynamoUsers

        self._users = DynamoUsers(users_table)
        self._user_pool_id = user_pool_id

    def email_of(self, user_id: str) -> str | None:
        row = self._users.get(user_id)
        if row is not None and row.email:
            return row.email
        return self._from_cognito(user_id)

    def _from_cognito(self, user_id: str) -> str | None:
        from covidtracer.signin.cognito import cognito_errors

        if '"' in user_id or "\\" in user_id:
            return None  # never a Cognito sub; it must not reach the filter expression
        with cognito_errors():
            found = aws.cognito().list_users(
                UserPoolId=self._user_pool_id,
                Filter=f'sub = "{user_id}"',
                AttributesToGet=["email"],
                Limit=1,
            )
        for user in found.get("Users", []):
            for attribute in user.get("Attributes", []):
                if attribute["Name"] == "email" and attribute.get("Value"):
                    return str(attribute["Value"])
        return None


class S3FeedStore:
    """The public feed object, served by CloudFront from this bucket. The version is the
    object's ETag; conditional writes use S3's ``If-Match`` / ``If-None-Match: *``."""

    # 412: the ETag moved on; 409: a concurrent conditional write to the same key.
    _CONFLICTS = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
    _MISSING = frozenset({"NoSuchKey", "404", "NotFound"})

    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def read(self, key: str) -> tuple[bytes, str] | None:
        found = self._fetch(aws.s3().get_object, key)
        return (found["Body"].read(), found["ETag"]) if found else None

    def version(self, key: str) -> str | None:
        found = self._fetch(aws.s3().head_object, key)
        return found["ETag"] if found else None

    def _fetch(self, call: Any, key: str) -> Any:
        """``call``'s response for the feed object, ``None`` if there is none."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in self._MISSING:
                return None
            raise Unavailable(f"s3:feed ({type(error).__name__})") from error
        except BotoCoreError as error:
            raise Unavailable(f"s3:feed ({type(error).__name__})") from error

    def write(
        self, key: str, gzipped_json: bytes, max_age_seconds: int, *, replaces: str | None
    ) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        condition = {"IfMatch": replaces} if replaces is not None else {"IfNoneMatch": "*"}
        try:
            aws.s3().put_object(
                Bucket=self._bucket,
                Key=key,
                Body=gzipped_json,
                ContentType="application/json",
                ContentEncoding="gzip",
                CacheControl=f"public, max-age={max_age_seconds}",
                **condition,  # type: ignore[arg-type]
            )
        except ClientError as error:
            if _error_code(error) in self._CONFLICTS:
                raise FeedChanged(key) from error
            raise Unavailable(f"s3:feed ({type(error).__name__})") from error
        except BotoCoreError as error:
            raise Unavailable(f"s3:feed ({type(error).__name__})") from error


def _error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# ---------------------------------------------------------------------------- in memory


class MemoryExposureEvents:
    def __init__(self) -> None:
        self.items: dict[str, tuple[StoredEvent, int]] = {}

    def get(self, notification_id: str) -> StoredEvent | None:
        found = self.items.get(notification_id)
        return found[0] if found else None

    def put(self, event: ExposureEvent, *, version: str, expires_at: int) -> None:
        self.items[event.notification_id] = (StoredEvent(event, True, version, True), expires_at)

    def mark_pushed(self, notification_id: str, version: str) -> None:
        found = self.items.get(notification_id)
        if found and found[0].version == version:
            stored, expires_at = found
            self.items[notification_id] = (replace(stored, push_pending=False), expires_at)

    def mark_published(self, notification_id: str, version: str) -> None:
        found = self.items.get(notification_id)
        if found and found[0].version == version and not found[0].push_pending:
            stored, expires_at = found
            self.items[notification_id] = (replace(stored, pending=False), expires_at)

    def pending(self) -> Iterator[StoredEvent]:
        yield from (stored for stored, _ in list(self.items.values()) if stored.pending)

    def delete(self, notification_id: str) -> bool:
        return self.items.pop(notification_id, None) is not None

    def scan(self) -> Iterator[StoredEvent]:
        yield from (stored for stored, _ in list(self.items.values()))


class MemoryFeedStore:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, int]] = {}
        self._versions: dict[str, str] = {}
        self._writes = 0

    def read(self, key: str) -> tuple[bytes, str] | None:
        found = self.objects.get(key)
        return (found[0], self._versions[key]) if found else None

    def version(self, key: str) -> str | None:
        return self._versions.get(key)

    def write(
        self, key: str, gzipped_json: bytes, max_age_seconds: int, *, replaces: str | None
    ) -> None:
        if self._versions.get(key) != replaces:
            raise FeedChanged(key)
        self._writes += 1
        self.objects[key] = (gzipped_json, max_age_seconds)
        self._versions[key] = f"v{self._writes}"


class MemoryContactDetails:
    def __init__(self) -> None:
        self.items: dict[str, ContactDetails] = {}

    def get(self, user_id: str) -> ContactDetails | None:
        return self.items.get(user_id)

    def put(self, details: ContactDetails) -> None:
        self.items[details.user_id] = details

    def create(self, details: ContactDetails) -> bool:
        if details.user_id in self.items:
            return False
        self.items[details.user_id] = details
        return True

    def update(self, user_id: str, changes: DetailsChanges, updated_at: str) -> ContactDetails:
        current = self.items.get(user_id)
        if current is None:
            raise NotFound
        updated = apply_details(
            current, changes, user_id=user_id, email=current.email, updated_at=updated_at
        )
        self.items[user_id] = updated
        return updated

    def delete(self, user_id: str) -> bool:
        return self.items.pop(user_id, None) is not None


class MemoryAccountEmails:
    def __init__(self, emails: Mapping[str, str] | None = None) -> None:
        self.emails = dict(emails or {})

    def email_of(self, user_id: str) -> str | None:
        return self.emails.get(user_id)
