"""I/O adapters of exposure events: the ``ExposureEvents`` table, the feed bucket, and the
ports to NCTS (callback requests) and FCM (pushes), whose adapters are
``covidtracer.ncts``/``covidtracer.fcm``. The stores' in-memory twins are
``tracerstack.details_fakes``; one contract test runs against both."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from covidtracer import aws, dynamo
from covidtracer.errors import Unavailable
from covidtracer.exposures.model import EVENT_TEXTS, ExposureEvent, FeedChanged, StoredEvent
from covidtracer.validation import format_utc, parse_utc

if TYPE_CHECKING:
    pass


class ExposureEvents(Protocol):
    def get(self, notification_id: str) -> StoredEvent | None: ...

    def get_many(self, notification_ids: Sequence[str]) -> list[StoredEvent]:
        """Those of the events that exist, each read strongly consistent, in no order."""

    def put(self, event: ExposureEvent, *, version: str, expires_at: int) -> None:
        """Store (or replace) the event with its push pending."""

    def mark_pushed(self, notification_id: str, version: str) -> None:
        """Clear the pending push, unless the event changed (or went) since ``version``."""

    def mark_published(self, notification_id: str, version: str) -> None:
        """Take the event out of ``pending()``: the feed holds this version and its push is
        done. Does nothing if the push is still pending or the event changed (or went)."""

    def mark_withdrawn(self, notification_id: str) -> None:
        """Take the event out of ``pending()`` for good, as its withdrawal's first step: no
        writer merges it into the feed again (``service._merged_pending``). Does nothing if
        there is no such event."""

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


class CallbackRequests(Protocol):
    def send_callback_request(self, request: Mapping[str, Any]) -> None:
        """Queue a callback for the contact tracers. Raises ``RequestRefused`` (a
        ``ValidationError``) or ``Unavailable``."""


class Pushes(Protocol):
    def send(self, message: Mapping[str, Any]) -> None:
        """Send one FCM HTTP v1 message. Raises ``Unavailable`` when FCM does not take it."""


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


def _to_stored(item: ExposureEventItem) -> StoredEvent:
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
        return dynamo.get_record(self._model, notification_id, "exposure_events", _to_stored)

    def get_many(self, notification_ids: Sequence[str]) -> list[StoredEvent]:
        try:  # BatchGetItem: 100 keys a request, unprocessed ones retried by pynamodb
            items = self._model.batch_get(list(notification_ids), consistent_read=True)
            return [_to_stored(item) for item in items]
        except PynamoDBException as error:
            raise dynamo.unavailable("exposure_events", error) from error

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

    # Each is conditional: an event changed, withdrawn or gone meanwhile is left as its
    # newer state decides.
    def mark_pushed(self, notification_id: str, version: str) -> None:
        m = self._model
        dynamo.update_if(
            m(notification_id), [m.pushPending.set(False)], m.version == version, "exposure_events"
        )

    def mark_published(self, notification_id: str, version: str) -> None:
        m = self._model
        # Not while its push is still pending.
        done = (m.version == version) & (m.pushPending == False)  # noqa: E712 - a DynamoDB condition
        dynamo.update_if(m(notification_id), [m.pending.remove()], done, "exposure_events")

    def mark_withdrawn(self, notification_id: str) -> None:
        m = self._model
        exists = m.notificationId.exists()
        dynamo.update_if(m(notification_id), [m.pending.remove()], exists, "exposure_events")

    def pending(self) -> Iterator[StoredEvent]:
        try:
            # Model.query with index_name, not the index object: the object is shared by
            # every bound copy of the model and points at the last one bound.
            for item in self._model.query(PENDING, index_name=PENDING_INDEX):
                yield _to_stored(item)
        except PynamoDBException as error:
            raise dynamo.unavailable("exposure_events", error) from error

    def delete(self, notification_id: str) -> bool:
        return dynamo.delete_if_present(self._model, notification_id, "exposure_events")

    def scan(self) -> Iterator[StoredEvent]:
        try:
            for item in self._model.scan():
                yield _to_stored(item)
        except PynamoDBException as error:
            raise dynamo.unavailable("exposure_events", error) from error


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

    def _fetch(self, call: Callable[..., Any], key: str) -> Any:
        """``call``'s response for the feed object, ``None`` if there is none."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if aws.error_code(error) in self._MISSING:
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
            if aws.error_code(error) in self._CONFLICTS:
                raise FeedChanged(key) from error
            raise Unavailable(f"s3:feed ({type(error).__name__})") from error
        except BotoCoreError as error:
            raise Unavailable(f"s3:feed ({type(error).__name__})") from error
