"""Use cases of exposure events, each ``f(deps, request, now)``: callback requests (§2.4),
events from NCTS and the exposure-events feed (§2.5). The routes pass the real adapters
(``wiring``), unit tests in-memory twins.

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
document is recreated from a full scan (``_rebuild_feed``). Every write is conditional on
the version that was read (or, for a rebuild, seen before its scan), so concurrent writers
never overwrite each other's changes.

Concurrent inbound changes merge instead of queueing (issue 20: 100 events at 20 at once
gave 21 × 503 when each writer only retried its own change): a writer applies, with its
own change, every other pending event the feed does not show yet, so one write publishes
all the changes stored before it; a writer that lost reads again and is done as soon as the
feed shows its change, whoever wrote it. Pending events are read after the feed and each
re-read consistently (the index lags), so a merged event is never staler than the feed it
is merged into. A withdrawal first takes its event off the pending index
(``mark_withdrawn``), then edits the feed, then deletes the event: a writer that merged it
before it was marked read the feed before the withdrawal's write, so its own write fails
and it reads again; none merges it after. A withdrawal that fails half-way leaves an event
the feed may still show but the table still holds (NCTS's retry finishes it), never a feed
showing an event the table has lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from covidtracer import logs
from covidtracer.analytics.emitter import emit
from covidtracer.errors import Unavailable, ValidationError
from covidtracer.exposures import model
from covidtracer.exposures.settings import ExposureEventSettings
from covidtracer.ncts import require_api_key
from covidtracer.ratelimit import service as ratelimit
from covidtracer.ratelimit.model import Limit

if TYPE_CHECKING:
    from covidtracer.exposures.repository import (
        CallbackRequests,
        ExposureEvents,
        FeedStore,
        Pushes,
    )
    from covidtracer.ratelimit.repository import Counters

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class Dependencies:
    events: ExposureEvents
    feed: FeedStore
    counters: Counters
    ncts: CallbackRequests
    fcm: Pushes
    rules: ExposureEventSettings
    # The key NCTS presents on its calls (Secrets Manager, read once per environment).
    ncts_api_key: Callable[[], str]


@dataclass(frozen=True)
class MatchRequest:
    """``POST /v2/exposure-event-matches``: the body and the caller's address."""

    body: Mapping[str, Any]
    source_ip: str


@dataclass(frozen=True)
class FeedJob:
    """A run of the feed job; ``retry_pushes`` off only to time the feed alone (bench)."""

    retry_pushes: bool = True


def require_ncts_key(deps: Dependencies, presented: str | None) -> None:
    """The credential check every NCTS route runs first, before its body is read (the one
    check shared with the ENF API: same 401 and 503)."""
    require_api_key(presented, deps.ncts_api_key)


# ---------------------------------------------------------------------------- §2.4


def request_callback(deps: Dependencies, request: MatchRequest, now: datetime) -> None:
    """Forwards a callback request for a known event whose GLN the caller proves.

    Limits (DESIGN §8; docs/operations.md §10), both on what is forwarded to the contact
    tracers (junk that proves nothing costs one read and counts nowhere, so it cannot use up
    a person's allowance): per source address, and per phone and event. A phone and event
    already sent so often is answered as requested and not sent again (the tracers have
    it): someone who sends a person's phone cannot refuse the person's own request. A
    refused request (429) or an NCTS outage (503) counts against nothing.

    Raises ``ValidationError`` (bad fields, unknown event, GLN hash mismatch),
    ``TooManyRequests`` (per IP) or ``Unavailable``.
    """
    callback = model.parse_callback_request(request.body)
    limits = deps.rules
    stored = deps.events.get(callback.notification_id)
    if stored is None or not stored.event.is_active(now, limits.feed_active_days):
        raise ValidationError.of("NotificationId", "The exposure event does not exist.")
    if not stored.event.matches(callback.event_id, callback.gln):
        raise ValidationError.of("Gln", "The location does not match the exposure event.")
    per_phone = Limit("callback-phone", limits.callback_limit_per_phone,
                      limits.callback_phone_window_seconds)  # fmt: skip
    with ratelimit.counted(deps.counters, now) as tally:
        if tally.note(per_phone, f"{callback.phone}\0{callback.notification_id}") > (
            per_phone.max_hits
        ):
            tally.refund()
            log.info("callback already requested")
            return
        tally.count(
            [(Limit("callback-ip", limits.callback_limit_per_ip,
                    limits.callback_ip_window_seconds), request.source_ip)]
        )  # fmt: skip
        deps.ncts.send_callback_request(callback.wire())
    emit("location_callback_requested", now=now)


# ---------------------------------------------------------------------------- §2.5 inbound


def receive_exposure_event(
    deps: Dependencies, body: Mapping[str, Any], now: datetime
) -> tuple[bool, dict[str, str]]:
    """Stores an event from NCTS (idempotent on ``notificationId``), pushes it, republishes
    the feed. Returns (created, feed item). A repeat of the same event changes nothing
    and sends no second push (unless the first is still pending).

    Raises ``ValidationError``, or ``Unavailable`` when the event could not be stored or the
    feed not written (a retry is safe).
    """
    event = model.parse_exposure_event(body)
    active_days = deps.rules.feed_active_days
    existing = deps.events.get(event.notification_id)
    if existing is not None and existing.event == event:
        stored = existing
    else:
        stored = model.StoredEvent(event, True, uuid.uuid4().hex, pending=True)
        deps.events.put(
            event, version=stored.version, expires_at=model.expires_at(event, active_days)
        )
    if stored.push_pending and event.is_active(now, active_days):
        _push(deps, stored)
    _update_feed(deps, now, upsert=event)
    if stored.pending:
        deps.events.mark_published(event.notification_id, stored.version)
    change = "new" if existing is None else "repeat" if existing.event == event else "updated"
    emit("exposure_event_received", categories={"change": change}, now=now)
    return existing is None, event.feed_item()


def withdraw_exposure_event(deps: Dependencies, notification_id: str, now: datetime) -> None:
    """Removes an event from the feed, then from the table. Withdrawing an unknown (or
    already withdrawn) event succeeds, so NCTS can retry. Raises ``ValidationError`` for a
    malformed id, ``Unavailable`` on storage or feed failure."""
    if not model.RECORD_ID.fullmatch(notification_id):
        raise ValidationError.of("NotificationId", "The value is not in the expected format.")
    deps.events.mark_withdrawn(notification_id)  # no concurrent writer merges it back
    _update_feed(deps, now, remove=notification_id)
    deps.events.delete(notification_id)
    emit("exposure_event_withdrawn", now=now)


# ---------------------------------------------------------------------------- §2.5 feed

# Conditional feed writes that lost to a concurrent writer before giving up with a 503 (the
# caller retries). Writers merge each other's pending changes, so a loser usually finds its
# change published on its next read.
FEED_WRITE_ATTEMPTS = 5

MERGED_PENDING = 100
"""Other pending events one write folds in at most (one consistent batch read: DynamoDB's
BatchGetItem takes 100 keys). Changes in flight at once are a handful; a backlog (FCM down
for hours leaves events pending) is mostly shown already and skipped without a read."""


def publish_exposure_events_feed(deps: Dependencies, job: FeedJob, now: datetime) -> dict[str, int]:
    """The 2-hourly job: brings the stored feed up to date from what changed or expired,
    then (``job.retry_pushes``) pushes the pending events whose push FCM has not accepted
    yet. Returns counts for the job's log.

    Reads the feed document and the pending events (a sparse index; each re-read
    consistently, as the index lags), applies them and drops the items no longer active,
    and writes only if that changed the feed. Never scans the table, unless there is no
    readable feed to start from (``_rebuild_feed``). Raises ``Unavailable`` when the table
    or the feed cannot be read or written; a push that fails again stays pending for the
    next run.
    """
    rules = deps.rules
    for _ in range(FEED_WRITE_ATTEMPTS):
        current = deps.feed.read(rules.feed_object_key)
        if current is None:
            return _rebuild_feed(deps, now, retry_pushes=job.retry_pushes)
        document, version = current
        # After the read: a change stored since makes the write below fail and come again.
        pending = _fresh_pending(deps, [p.event.notification_id for p in deps.events.pending()])
        try:
            items = model.feed_items(document)
            changed = model.updated_items(
                items, now, rules.feed_active_days, upserts=[p.event for p in pending]
            )
        except ValueError:
            log.warning("stored feed unreadable: rebuilding it")
            return _rebuild_feed(deps, now, retry_pushes=job.retry_pushes)
        if changed == items:
            break
        try:
            deps.feed.write(
                rules.feed_object_key, model.feed_document(changed),
                rules.feed_max_age_seconds, replaces=version,
            )  # fmt: skip
            break
        except model.FeedChanged:
            continue
    else:
        raise Unavailable("s3:feed (concurrent writers)")
    summary = _finish_pending(deps, pending, now, job.retry_pushes)
    emit("exposure_feed_published", counts={"items": len(changed)}, now=now)
    return {"items": len(changed), "expired": len(items) - _kept(items, changed), **summary}


def _kept(before: list[dict[str, str]], after: list[dict[str, str]]) -> int:
    """How many of ``before``'s notifications are still in ``after``."""
    remaining = {item.get("notificationId") for item in after}
    return sum(1 for item in before if item.get("notificationId") in remaining)


def _rebuild_feed(deps: Dependencies, now: datetime, *, retry_pushes: bool) -> dict[str, int]:
    """Recreates ``current-exposure-events.json`` from a full scan of the table: only for a
    feed that is missing (the stage's first event) or unreadable, never on the schedule.

    Raises ``Unavailable`` when the table cannot be read or the feed not written.
    """
    for _ in range(FEED_WRITE_ATTEMPTS):
        try:
            return _rebuild_once(deps, now, None, retry_pushes)
        except model.FeedChanged:
            continue
    raise Unavailable("s3:feed (concurrent writers)")


def _rebuild_once(
    deps: Dependencies, now: datetime, withdrawn: str | None, retry_pushes: bool
) -> dict[str, int]:
    """One rebuild from a full scan, conditional on the feed's version seen before it, then
    the scanned events it now holds finished (``_finish_pending``); the job's counts.
    ``withdrawn`` names an event being withdrawn, still in the table but not to be shown.
    ``FeedChanged`` (nothing finished) if another writer came first."""
    rules = deps.rules
    key = rules.feed_object_key
    seen = deps.feed.version(key)  # before the scan: a change during it wins
    stored = [s for s in deps.events.scan() if s.event.notification_id != withdrawn]
    items = model.active_items((s.event for s in stored), now, rules.feed_active_days)
    deps.feed.write(key, model.feed_document(items), rules.feed_max_age_seconds, replaces=seen)
    log.warning("exposure-events feed rebuilt from a table scan", extra={"items": len(items)})
    emit("exposure_feed_published", counts={"items": len(items)}, now=now)
    summary = _finish_pending(deps, [s for s in stored if s.pending], now, retry_pushes)
    return {"items": len(items), "expired": 0, **summary}


def _finish_pending(
    deps: Dependencies, pending: list[model.StoredEvent], now: datetime, retry_pushes: bool
) -> dict[str, int]:
    """With the feed holding ``pending`` events: push those still waiting for it (until FCM
    fails), and take every event that is then done off the pending index."""
    active_days = deps.rules.feed_active_days
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
    now: datetime,
    *,
    upsert: model.ExposureEvent | None = None,
    remove: str | None = None,
) -> None:
    """Applies one inbound change to the stored feed, with the other pending changes it
    does not show yet (see the module's docstring); done as soon as the feed shows the
    change, whoever wrote it. With no feed yet, or one this code cannot read, rebuilds it
    from the table instead. Raises ``Unavailable`` when the feed cannot be read or written."""
    rules = deps.rules
    key, active_days = rules.feed_object_key, rules.feed_active_days
    own = upsert.notification_id if upsert else remove
    for _ in range(FEED_WRITE_ATTEMPTS):
        current = deps.feed.read(key)
        try:
            if current is None:
                _rebuild_once(deps, now, remove, retry_pushes=False)
                return
            document, version = current
            try:
                items = model.feed_items(document)
                if _shows(items, now, active_days, upsert=upsert, remove=remove):
                    return  # published: a repeat, or merged by a concurrent writer
                merged = _merged_pending(deps, items, now, skip=own)
                changed = model.updated_items(
                    items, now, active_days, upserts=merged, upsert=upsert, remove=remove
                )
            except ValueError:
                log.warning("stored feed unreadable: rebuilding it")
                _rebuild_once(deps, now, remove, retry_pushes=False)
                return
            deps.feed.write(
                key, model.feed_document(changed), rules.feed_max_age_seconds, replaces=version
            )
            return
        except model.FeedChanged:
            continue
    raise Unavailable("s3:feed (concurrent writers)")


def _shows(
    items: list[dict[str, str]],
    now: datetime,
    active_days: int,
    *,
    upsert: model.ExposureEvent | None,
    remove: str | None,
) -> bool:
    """Whether ``items`` already reflect the change: the upserted event as it is now (or no
    item for it once it is no longer active), the removed one gone."""
    gone = remove if upsert is None else upsert.notification_id
    shown = [item for item in items if item.get("notificationId") == gone]
    if upsert is not None and upsert.is_active(now, active_days):
        return shown == [upsert.feed_item()]
    return not shown


def _merged_pending(
    deps: Dependencies, items: list[dict[str, str]], now: datetime, *, skip: str | None
) -> list[model.ExposureEvent]:
    """The pending events (``skip``, the writer's own, aside) that the feed ``items`` do not
    show as they are, each as the table holds it now (one consistent batch read), at most
    ``MERGED_PENDING``. Read after the feed: one stored since makes the write fail and come
    again."""
    active_days = deps.rules.feed_active_days
    shown = {item.get("notificationId"): item for item in items}
    wanted: list[str] = []
    for listed in deps.events.pending():
        event = listed.event
        if event.notification_id == skip or not event.is_active(now, active_days):
            continue  # the writer's own change, or nothing to show
        if shown.get(event.notification_id) == event.feed_item():
            continue  # shown as the index has it: a newer version has its own writer
        wanted.append(event.notification_id)
        if len(wanted) == MERGED_PENDING:
            break
    return [s.event for s in _fresh_pending(deps, wanted)]


def _fresh_pending(deps: Dependencies, wanted: list[str]) -> list[model.StoredEvent]:
    """The events of ``wanted`` as the table holds them now (one consistent batch read),
    those still pending (not withdrawn or published meanwhile), in ``wanted``'s order (the
    index's: the last change wins)."""
    if not wanted:
        return []
    order = {notification_id: n for n, notification_id in enumerate(wanted)}
    fresh = (s for s in deps.events.get_many(wanted) if s.pending)
    return sorted(fresh, key=lambda s: order[s.event.notification_id])


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
