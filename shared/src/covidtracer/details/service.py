"""Use cases of the app API: a signed-in person's contact details; and, needing no sign-in,
diary upload, callback request, exposure events from NCTS, and the exposure-events feed.

Each takes its collaborators (``Dependencies``), settings and ``now``; the routes pass real
adapters, unit tests pass in-memory twins.

Reliability of exposure events (DESIGN §8: nothing accepted is lost): an inbound event is
stored first, with ``pushPending`` and ``pending`` set; the push to FCM follows and clears
``pushPending`` once FCM accepts it, and once the feed holds the event as well ``pending``
goes too. Whatever fails leaves the flags, and the feed job (every 2 hours) finishes the
work for the still ``pending`` events: it reads them from a sparse index, never the table.
The feed is written after every inbound change; if that write fails NCTS gets a 503 and
its retry (idempotent) writes it.

The feed (DESIGN §7: 10,000 active items within 1 s, 100,000 within 3 s): every writer edits
the stored feed document (read, apply its changes and drop what aged out, write) instead of
scanning the table, which is O(items in DynamoDB) and slow: an inbound change applies
itself, the 2-hourly job the pending events and the expiries. Only a missing or unreadable
document is recreated from a full scan (``rebuild_exposure_events_feed``). Every write is
conditional on the version that was read (or, for a rebuild, seen before its scan), so
concurrent writers never overwrite each other's changes: the loser reads again and
reapplies. A withdrawal edits the feed before it deletes the event, so a withdrawal that
fails half-way leaves an event the feed no longer shows (NCTS's retry deletes it), never a
feed showing an event the table has lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from covidtracer import logs
from covidtracer.analytics.emitter import emit
from covidtracer.details import model
from covidtracer.errors import NotFound, Unauthorized, Unavailable, ValidationError
from covidtracer.ncts import require_api_key
from covidtracer.personaldetails.model import iso_millis
from covidtracer.ratelimit import service as ratelimit
from covidtracer.ratelimit.model import Limit
from covidtracer.settings import AwsSettings, DetailsSettings, FcmSettings, PartnerSettings, Tables

if TYPE_CHECKING:
    from covidtracer.details.repository import (
        AccountEmails,
        ContactDetailsStore,
        ExposureEvents,
        FeedStore,
    )
    from covidtracer.fcm import FcmClient
    from covidtracer.ncts import NctsClient
    from covidtracer.ratelimit.repository import Counters

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class Dependencies:
    events: ExposureEvents
    feed: FeedStore
    counters: Counters
    ncts: NctsClient
    fcm: FcmClient


def dependencies(settings: DetailsSettings) -> Dependencies:
    """The real adapters for these settings, built once per execution environment."""
    return _real(settings.tables, settings.feed_bucket, settings.partners, settings.fcm)


@cache
def _real(
    tables: Tables, feed_bucket: str, partners: PartnerSettings, fcm_settings: FcmSettings
) -> Dependencies:
    """DynamoDB, S3, NCTS and FCM adapters (their libraries load here, on first use)."""
    from covidtracer import fcm, ncts
    from covidtracer.details.repository import DynamoExposureEvents, S3FeedStore
    from covidtracer.ratelimit.repository import DynamoCounters

    return Dependencies(
        events=DynamoExposureEvents(tables.exposure_events),
        feed=S3FeedStore(feed_bucket),
        counters=DynamoCounters(tables.rate_limits),
        ncts=ncts.client(partners),
        fcm=fcm.client(fcm_settings),
    )


# ---------------------------------------------------------------------------- §2.3


def upload_diary(
    body: Mapping[str, Any],
    *,
    source_ip: str,
    deps: Dependencies,
    settings: DetailsSettings,
    now: datetime,
) -> int:
    """Validates the diary, drops entries past retention, hands the rest to NCTS in one
    request (all or nothing). Returns how many entries were sent.

    The consent code is the credential, so guesses are limited: a code NCTS refuses counts
    against the source address and against all callers (``TooManyRequests`` once either is
    used up, before anything is forwarded); an accepted diary or an NCTS outage counts
    nothing. Raises ``ValidationError`` (also ``ConsentCodeRejected`` from NCTS),
    ``TooManyRequests`` or ``Unavailable``. Even a diary left empty by the cut is sent,
    so NCTS still judges the consent code.
    """
    upload = model.parse_diary_upload(body, now=now, rules=settings.diary)
    kept = upload.within_retention(now, settings.diary.retention_days)
    rules = settings.diary
    window = rules.guess_window_seconds
    with ratelimit.counted(deps.counters, now) as tally:
        # Counted before NCTS answers (a guess must be refused before it is forwarded),
        # refunded once NCTS accepts the code.
        tally.count(
            [
                (Limit("diary-guess-ip", rules.guesses_per_ip, window), source_ip),
                (Limit("diary-guess", rules.guesses_global, window), "all"),
            ]
        )
        deps.ncts.send_location_history(kept.consent_code, [e.wire() for e in kept.entries])
        tally.refund()
    log.info(
        "diary forwarded",
        extra={"entries": len(kept.entries), "dropped": len(upload.entries) - len(kept.entries)},
    )
    dropped = len(upload.entries) - len(kept.entries)
    emit("diary_shared", counts={"entries": len(kept.entries), "dropped": dropped}, now=now)
    return len(kept.entries)


# ---------------------------------------------------------------------------- §2.4


def request_callback(
    body: Mapping[str, Any],
    *,
    source_ip: str,
    deps: Dependencies,
    settings: DetailsSettings,
    now: datetime,
) -> None:
    """Forwards a callback request for a known event whose GLN the caller proves.

    Limits (DESIGN §8): every well-formed request counts against its source address; only
    a request that proved its event counts against the phone (per phone and event, so junk
    sent with someone's number, or a request for another event, never uses up theirs); a
    refused request (429) or an NCTS outage (503) counts against nothing.

    Raises ``ValidationError`` (bad fields, unknown event, GLN hash mismatch),
    ``TooManyRequests`` (per phone, per IP) or ``Unavailable``.
    """
    request = model.parse_callback_request(body)
    limits = settings.events
    with ratelimit.counted(deps.counters, now) as tally:
        tally.count(
            [(Limit("callback-ip", limits.callback_limit_per_ip,
                    limits.callback_ip_window_seconds), source_ip)]
        )  # fmt: skip
        stored = deps.events.get(request.notification_id)
        if stored is None or not stored.event.is_active(now, limits.feed_active_days):
            raise ValidationError.of("NotificationId", "The exposure event does not exist.")
        if not stored.event.matches(request.event_id, request.gln):
            raise ValidationError.of("Gln", "The location does not match the exposure event.")
        tally.count(
            [(Limit("callback-phone", limits.callback_limit_per_phone,
                    limits.callback_phone_window_seconds),
              f"{request.phone}\0{request.notification_id}")]
        )  # fmt: skip
        deps.ncts.send_callback_request(request.wire())
    emit("location_callback_requested", now=now)


# ---------------------------------------------------------------------------- §2.5 inbound


# The one check of the NCTS credential, shared with the ENF API (same 401 and 503).
check_ncts_api_key = require_api_key


def receive_exposure_event(
    body: Mapping[str, Any], *, deps: Dependencies, settings: DetailsSettings, now: datetime
) -> tuple[bool, dict[str, str]]:
    """Stores an event from NCTS (idempotent on ``notificationId``), pushes it, republishes
    the feed. Returns (created, feed item). A repeat of the same event changes nothing
    and sends no second push (unless the first is still pending).

    Raises ``ValidationError``, or ``Unavailable`` when the event could not be stored or the
    feed not written (a retry is safe).
    """
    event = model.parse_exposure_event(body)
    existing = deps.events.get(event.notification_id)
    if existing is not None and existing.event == event:
        stored = existing
    else:
        stored = model.StoredEvent(event, True, uuid.uuid4().hex, pending=True)
        deps.events.put(
            event,
            version=stored.version,
            expires_at=model.expires_at(event, settings.events.feed_active_days),
        )
    if stored.push_pending and event.is_active(now, settings.events.feed_active_days):
        _push(deps, stored)
    _update_feed(deps, settings, now, upsert=event)
    if stored.pending:
        deps.events.mark_published(event.notification_id, stored.version)
    change = "new" if existing is None else "repeat" if existing.event == event else "updated"
    emit("exposure_event_received", categories={"change": change}, now=now)
    return existing is None, event.feed_item()


def withdraw_exposure_event(
    notification_id: str, *, deps: Dependencies, settings: DetailsSettings, now: datetime
) -> None:
    """Removes an event from the feed, then from the table. Raises ``NotFound``-free:
    withdrawing an unknown (or already withdrawn) event succeeds, so NCTS can retry;
    ``ValidationError`` for a malformed id, ``Unavailable`` on storage or feed failure."""
    if not model.RECORD_ID.fullmatch(notification_id):
        raise ValidationError.of("NotificationId", "The value is not in the expected format.")
    _update_feed(deps, settings, now, remove=notification_id)
    deps.events.delete(notification_id)
    emit("exposure_event_withdrawn", now=now)


# ---------------------------------------------------------------------------- §2.5 feed

# Conditional feed writes that lost to a concurrent writer before giving up with a 503 (the
# caller retries): changes arrive one at a time from NCTS, so a second loss is already rare.
FEED_WRITE_ATTEMPTS = 5


def publish_exposure_events_feed(
    *, deps: Dependencies, settings: DetailsSettings, now: datetime, retry_pushes: bool = True
) -> dict[str, int]:
    """The 2-hourly job: brings the stored feed up to date from what changed or expired,
    then (``retry_pushes``) pushes the pending events whose push FCM has not accepted yet.
    Returns counts for the job's log.

    Reads the feed document and the pending events (a sparse index; each re-read
    consistently, as the index lags), applies them and drops the items no longer active,
    and writes only if that changed the feed. Never scans the table, unless there is no
    readable feed to start from (``rebuild_exposure_events_feed``). Raises ``Unavailable``
    when the table or the feed cannot be read or written; a push that fails again stays
    pending for the next run.
    """
    events = settings.events
    for _ in range(FEED_WRITE_ATTEMPTS):
        current = deps.feed.read(events.feed_object_key)
        if current is None:
            return rebuild_exposure_events_feed(
                deps=deps, settings=settings, now=now, retry_pushes=retry_pushes
            )
        document, version = current
        # After the read: a change stored since makes the write below fail and come again.
        pending = [
            fresh
            for listed in deps.events.pending()
            if (fresh := deps.events.get(listed.event.notification_id)) is not None
        ]
        try:
            items = model.feed_items(document)
            changed = model.updated_items(
                items, now, events.feed_active_days, upserts=[p.event for p in pending]
            )
        except ValueError:
            log.warning("stored feed unreadable: rebuilding it")
            return rebuild_exposure_events_feed(
                deps=deps, settings=settings, now=now, retry_pushes=retry_pushes
            )
        if changed == items:
            break
        try:
            deps.feed.write(
                events.feed_object_key, model.feed_document(changed),
                events.feed_max_age_seconds, replaces=version,
            )  # fmt: skip
            break
        except model.FeedChanged:
            continue
    else:
        raise Unavailable("s3:feed (concurrent writers)")
    summary = _finish_pending(deps, pending, now, events.feed_active_days, retry_pushes)
    emit("exposure_feed_published", counts={"items": len(changed)}, now=now)
    return {"items": len(changed), "expired": len(items) - _kept(items, changed), **summary}


def _kept(before: list[dict[str, str]], after: list[dict[str, str]]) -> int:
    """How many of ``before``'s notifications are still in ``after``."""
    remaining = {item.get("notificationId") for item in after}
    return sum(1 for item in before if item.get("notificationId") in remaining)


def rebuild_exposure_events_feed(
    *,
    deps: Dependencies,
    settings: DetailsSettings,
    now: datetime,
    retry_pushes: bool = True,
    withdrawn: str | None = None,
) -> dict[str, int]:
    """Recreates ``current-exposure-events.json`` from a full scan of the table: only for a
    feed that is missing (the stage's first event) or unreadable, never on the schedule.
    ``withdrawn`` names an event being withdrawn, still in the table but not to be shown.

    Raises ``Unavailable`` when the table cannot be read or the feed not written.
    """
    active_days = settings.events.feed_active_days
    key = settings.events.feed_object_key
    for _ in range(FEED_WRITE_ATTEMPTS):
        seen = deps.feed.version(key)  # before the scan: a change during it wins
        stored = [s for s in deps.events.scan() if s.event.notification_id != withdrawn]
        items = model.active_items((s.event for s in stored), now, active_days)
        try:
            deps.feed.write(
                key, model.feed_document(items), settings.events.feed_max_age_seconds,
                replaces=seen,
            )  # fmt: skip
            break
        except model.FeedChanged:
            continue
    else:
        raise Unavailable("s3:feed (concurrent writers)")
    log.warning("exposure-events feed rebuilt from a table scan", extra={"items": len(items)})
    emit("exposure_feed_published", counts={"items": len(items)}, now=now)
    pending = [s for s in stored if s.pending]
    summary = _finish_pending(deps, pending, now, active_days, retry_pushes)
    return {"items": len(items), "expired": 0, **summary}


def _finish_pending(
    deps: Dependencies,
    pending: list[model.StoredEvent],
    now: datetime,
    active_days: int,
    retry_pushes: bool,
) -> dict[str, int]:
    """With the feed holding ``pending`` events: push those still waiting for it (until FCM
    fails), and take every event that is then done off the pending index."""
    waiting = [s for s in pending if s.push_pending and s.event.is_active(now, active_days)]
    pushed = 0
    if retry_pushes:
        for entry in waiting:
            if not _push(deps, entry):
                break  # FCM is down: the rest stay pending for the next run
            pushed += 1
    for entry in pending:
        deps.events.mark_published(entry.event.notification_id, entry.version)
    return {"pushesRetried": pushed, "pushesPending": len(waiting) - pushed}


def _update_feed(
    deps: Dependencies,
    settings: DetailsSettings,
    now: datetime,
    *,
    upsert: model.ExposureEvent | None = None,
    remove: str | None = None,
) -> None:
    """Applies one inbound change to the stored feed (see the module's docstring). With no
    feed yet, or one this code cannot read, rebuilds it from the table instead. Raises
    ``Unavailable`` when the feed cannot be read or written."""
    key, active_days = settings.events.feed_object_key, settings.events.feed_active_days
    for _ in range(FEED_WRITE_ATTEMPTS):
        current = deps.feed.read(key)
        if current is None:
            break
        document, version = current
        try:
            items = model.feed_items(document)
            changed = model.updated_items(items, now, active_days, upsert=upsert, remove=remove)
        except ValueError:
            log.warning("stored feed unreadable: rebuilding it")
            break
        updated = model.feed_document(changed)
        if updated == document:
            return  # a repeat of a change already published
        try:
            deps.feed.write(key, updated, settings.events.feed_max_age_seconds, replaces=version)
            return
        except model.FeedChanged:
            continue
    else:
        raise Unavailable("s3:feed (concurrent writers)")
    rebuild_exposure_events_feed(
        deps=deps, settings=settings, now=now, retry_pushes=False, withdrawn=remove
    )


def _push(deps: Dependencies, stored: model.StoredEvent) -> bool:
    """Pushes one event and clears its pending flag; ``False`` (logged) if FCM failed."""
    try:
        deps.fcm.send(model.push_message([stored.event]))
    except Unavailable as error:
        log.warning("push deferred", extra={"reason": str(error)})
        emit("exposure_push_sent", counts={"items": 1}, categories={"outcome": "deferred"})
        return False
    deps.events.mark_pushed(stored.event.notification_id, stored.version)
    emit("exposure_push_sent", counts={"items": 1}, categories={"outcome": "sent"})
    return True


# ---------------------------------------------------------------------------- §2.2
#
# The caller's userId always comes from their verified access token (the route passes it);
# nothing in a body or path can name another person's record.


@dataclass(frozen=True)
class ContactDependencies:
    details: ContactDetailsStore
    emails: AccountEmails


def contact_dependencies(settings: DetailsSettings) -> ContactDependencies:
    """The real adapters (DynamoDB, and Cognito for the email fallback), built once."""
    return _real_contact(settings.tables, settings.user_pool_id, settings.aws)


@cache
def _real_contact(tables: Tables, user_pool_id: str, aws: AwsSettings) -> ContactDependencies:
    from covidtracer.details.repository import AccountEmailsFromUsers, DynamoContactDetails

    return ContactDependencies(
        details=DynamoContactDetails(tables.personal_details),
        emails=AccountEmailsFromUsers(tables.users, user_pool_id, aws),
    )


def get_contact_details(user_id: str, *, deps: ContactDependencies) -> dict[str, Any]:
    """The caller's record with ``email`` and ``updatedAt``. Raises ``NotFound`` if there is
    none, ``Unavailable`` if DynamoDB fails."""
    stored = deps.details.get(user_id)
    if stored is None:
        raise NotFound
    return stored.wire()


def replace_contact_details(
    user_id: str, body: Mapping[str, Any], *, deps: ContactDependencies, now: datetime
) -> dict[str, Any]:
    """``PUT``: validates a whole record and stores it in place of any previous one, with
    the account's email as of now (the export hands NCTS the email with the record).

    Raises ``ValidationError``; ``Unauthorized`` if the token's account no longer exists;
    ``Unavailable`` if DynamoDB or Cognito fails (then nothing was written).
    """
    changes = model.parse_details(body, now=now, partial=False)
    email = deps.emails.email_of(user_id)
    if email is None:
        raise Unauthorized
    details = model.apply_details(
        None, changes, user_id=user_id, email=email, updated_at=iso_millis(now)
    )
    deps.details.put(details)
    log.info("contact details replaced")
    emit("contact_details_replaced", now=now)
    return details.wire()


def update_contact_details(
    user_id: str, body: Mapping[str, Any], *, deps: ContactDependencies, now: datetime
) -> dict[str, Any]:
    """``PATCH``: changes only the fields sent (``null`` or ``""`` clears an optional one),
    in one conditional write, so concurrent PATCHes of different fields both land. With no
    record yet it creates one (with the account's email), as apps 3.0.0–6.1.1 expect of the
    one PATCH they send after the first sign-in (CLIENTS.md); the export to NCTS follows
    from the table's stream either way.

    Raises ``ValidationError`` (also when there is no record and ``firstName`` or
    ``lastName`` is missing); ``NotFound`` for an empty PATCH without a record;
    ``Unauthorized`` if the token's account no longer exists; ``Unavailable`` on DynamoDB
    or Cognito failure.
    """
    changes = model.parse_details(body, now=now, partial=True)
    if not changes:
        return get_contact_details(user_id, deps=deps)  # nothing changes: no export either
    updated_at = iso_millis(now)
    try:
        stored = deps.details.update(user_id, changes, updated_at)
    except NotFound:
        missing = model.missing_to_create(changes)
        if missing:
            raise ValidationError(missing) from None
        email = deps.emails.email_of(user_id)
        if email is None:
            raise Unauthorized from None
        details = model.apply_details(
            None, changes, user_id=user_id, email=email, updated_at=updated_at
        )
        if deps.details.create(details):
            log.info("contact details created by patch", extra={"fields": sorted(changes)})
            emit("contact_details_created", now=now)
            return details.wire()
        # A concurrent request created the record first: apply this PATCH over it.
        stored = deps.details.update(user_id, changes, updated_at)
    log.info("contact details updated", extra={"fields": sorted(changes)})
    emit("contact_details_updated", counts={"fields": len(changes)}, now=now)
    return stored.wire()


def delete_contact_details(user_id: str, *, deps: ContactDependencies) -> None:
    """Deletes the caller's record; the stream's REMOVE becomes the export's tombstone.
    Deleting a record that is already gone succeeds (the app may retry after a lost
    response). Raises ``Unavailable`` on DynamoDB failure."""
    deleted = deps.details.delete(user_id)
    log.info("contact details deleted", extra={"existed": deleted})
    emit("contact_details_deleted", counts={"existed": int(deleted)})
