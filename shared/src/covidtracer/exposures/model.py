"""Pure rules of exposure events of interest (DESIGN §2.4, §2.5): what an event from NCTS
and a callback request must look like, the GLN hash, and the exact feed and push shapes the
app reads. No I/O here: time and limits are parameters, so the rules are tested as tables.
"""

from __future__ import annotations

import base64
import bisect
import gzip
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from covidtracer.validation import Problems, camel_fields, format_utc, parse_utc

GLN = re.compile(r"[0-9]{13}")
# NCTS (Salesforce) record ids: 15/18 characters today; a little room, and path-safe.
RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
HTTPS_URL = re.compile(r"https://[!-~]{1,2040}")

# A caller's names: as long as the app's contact details allow.
NAME_MAX = 50
CONTACT_NOTES_MAX = 255
# FCM refuses data messages over 4096 bytes; an event must fit in one push.
PUSH_PAYLOAD_MAX_BYTES = 4000

PUSH_TOPIC = "all"
PUSH_TYPE = "exposure-event-notifications"

CALLBACK_FIELDS = (
    "eventId",
    "notificationId",
    "gln",
    "firstName",
    "lastName",
    "phone",
    "contactNotes",
)
# name -> (required, max length); the order is the feed item's key order (DESIGN §2.5).
# The bodies are messages (line breaks allowed); the others are one line each.
MULTILINE_EVENT_TEXTS = frozenset({"systemNotificationBody", "appBannerBody"})
EVENT_TEXTS: dict[str, tuple[bool, int]] = {
    "systemNotificationBody": (True, 500),
    "appBannerTitle": (True, 100),
    "appBannerBody": (True, 1000),
    "appBannerLinkLabel": (False, 100),
    "appBannerLinkUrl": (False, 500),
}
EVENT_FIELDS = (
    "eventId",
    "notificationId",
    "gln",
    "start",
    "end",
    *EVENT_TEXTS,
    "appBannerRequestCallbackEnabled",
)


def gln_hash(gln: str) -> str:
    """``base64(SHA-384(gln as UTF-8))``: how the feed names a place without naming it."""
    return base64.b64encode(hashlib.sha384(gln.encode("utf-8")).digest()).decode("ascii")


def _event_reference(
    problems: Problems, body: Mapping[str, Any]
) -> tuple[str | None, str | None, str | None]:
    """``eventId``, ``notificationId`` and ``gln``: how an event from NCTS and a callback
    request alike name the event and its place."""
    event_id = problems.string(body, "eventId", pattern=RECORD_ID)
    notification_id = problems.string(body, "notificationId", pattern=RECORD_ID)
    gln = problems.string(body, "gln", pattern=GLN, pattern_message="The GLN must be 13 digits.")
    return event_id, notification_id, gln


# ---------------------------------------------------------------------------- callbacks (§2.4)


@dataclass(frozen=True)
class CallbackRequest:
    event_id: str
    notification_id: str
    gln: str
    first_name: str
    last_name: str
    phone: str
    contact_notes: str

    def wire(self) -> dict[str, str]:
        """The request as NCTS receives it. The GLN stays here: NCTS knows the event's place."""
        return camel_fields(self, omit={"gln"})


def parse_callback_request(body: Mapping[str, Any]) -> CallbackRequest:
    """The request, or ``ValidationError``. The phone is returned in E.164 (spaces removed)."""
    problems = Problems()
    problems.unknown_fields(body, CALLBACK_FIELDS)
    event_id, notification_id, gln = _event_reference(problems, body)
    first_name = problems.string(body, "firstName", max_length=NAME_MAX)
    last_name = problems.string(body, "lastName", required=False, max_length=NAME_MAX)
    phone = problems.phone(body)
    notes = problems.string(
        body, "contactNotes", required=False, max_length=CONTACT_NOTES_MAX, multiline=True
    )
    problems.raise_if_any()
    assert event_id and notification_id and gln and first_name and phone
    return CallbackRequest(
        event_id, notification_id, gln, first_name.strip(), (last_name or "").strip(), phone,
        notes or "",
    )  # fmt: skip


# ---------------------------------------------------------------------------- events (§2.5)


@dataclass(frozen=True)
class ExposureEvent:
    """An exposure event of interest. Only the GLN's hash is kept: a callback proves its GLN
    by hashing it, so the raw GLN is never needed after the event arrives."""

    event_id: str
    notification_id: str
    gln_hash: str
    start: datetime
    end: datetime
    texts: Mapping[str, str]
    request_callback_enabled: bool

    def feed_item(self) -> dict[str, str]:
        """The item as the app reads it: every value a string (DESIGN §2.5)."""
        return {
            "eventId": self.event_id,
            "notificationId": self.notification_id,
            "glnHash": self.gln_hash,
            "start": format_utc(self.start),
            "end": format_utc(self.end),
            **{name: self.texts.get(name, "") for name in EVENT_TEXTS},
            "appBannerRequestCallbackEnabled": "true" if self.request_callback_enabled else "false",
        }

    def is_active(self, now: datetime, active_days: int) -> bool:
        """Active while its end is within the last ``active_days`` (or still ahead)."""
        return _ended_within(self.end, now, active_days)

    def matches(self, event_id: str, gln: str) -> bool:
        """The caller knows this event and the place it names (constant-time hash compare)."""
        return event_id == self.event_id and hmac.compare_digest(gln_hash(gln), self.gln_hash)


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored: ``push_pending`` until FCM has accepted its push; ``pending``
    until, besides, the feed is known to hold this version (the feed job's work list);
    ``version`` changes on every write, so a late confirmation never clears a newer write."""

    event: ExposureEvent
    push_pending: bool
    version: str
    pending: bool = False


def expires_at(event: ExposureEvent, active_days: int) -> int:
    """TTL (epoch seconds): a day after the event leaves the feed; the feed itself filters
    by time, because TTL deletes late."""
    return int(event.end.timestamp()) + (active_days + 1) * 86_400


def parse_exposure_event(body: Mapping[str, Any]) -> ExposureEvent:
    """The event NCTS sent, or ``ValidationError`` listing every problem."""
    problems = Problems()
    problems.unknown_fields(body, EVENT_FIELDS)
    event_id, notification_id, gln = _event_reference(problems, body)
    start = problems.utc_time(body, "start")
    end = problems.utc_time(body, "end")
    if start is not None and end is not None and not start < end:
        problems.add("End", "The end must be after the start.")
    texts: dict[str, str] = {}
    for name, (required, max_length) in EVENT_TEXTS.items():
        text = problems.string(
            body, name, required=required, max_length=max_length,
            multiline=name in MULTILINE_EVENT_TEXTS,
        )  # fmt: skip
        texts[name] = text or ""
    if texts["appBannerLinkUrl"] and not HTTPS_URL.fullmatch(texts["appBannerLinkUrl"]):
        problems.add("AppBannerLinkUrl", "The link must be an https URL.")
    callback = body.get("appBannerRequestCallbackEnabled", False)
    if not isinstance(callback, bool):
        problems.add("AppBannerRequestCallbackEnabled", "This field must be true or false.")
    problems.raise_if_any()
    assert event_id and notification_id and gln and start and end
    event = ExposureEvent(
        event_id, notification_id, gln_hash(gln), start, end, texts, bool(callback)
    )
    if len(push_payload([event]).encode("utf-8")) > PUSH_PAYLOAD_MAX_BYTES:
        problems.add("Body", "The event's texts are too long to push to phones.")
        problems.raise_if_any()
    return event


def active_items(
    events: Iterable[ExposureEvent], now: datetime, active_days: int
) -> list[dict[str, str]]:
    """Feed items of the active events, in a stable order (start, then notification id)."""
    active = [e for e in events if e.is_active(now, active_days)]
    active.sort(key=lambda e: (e.start, e.notification_id))
    return [e.feed_item() for e in active]


def _ended_within(end: datetime, now: datetime, active_days: int) -> bool:
    return end >= now - timedelta(days=active_days)


class FeedChanged(Exception):
    """The stored feed changed since it was read (a concurrent writer): read it again and
    apply the change again."""


def feed_items(document: bytes) -> list[dict[str, str]]:
    """The items of a stored feed document; ``ValueError`` when it is not one of ours."""
    try:
        items = json.loads(gzip.decompress(document))["items"]
    except (OSError, EOFError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"not a feed document ({type(error).__name__})") from error
    if not isinstance(items, list) or not {type(item) for item in items} <= {dict}:
        raise ValueError("not a feed document (items)")
    # One pass over every value: 100,000 items hold 1.2 M of them (DESIGN §7's 3 s).
    if not {type(value) for item in items for value in item.values()} <= {str}:
        raise ValueError("not a feed document (values)")
    return items


# The feed's times as ``format_utc`` writes them: their first 19 characters (to the second)
# order like the times themselves, so most items need no parsing to be kept or dropped.
_FEED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z")


def updated_items(
    items: Iterable[Mapping[str, str]],
    now: datetime,
    active_days: int,
    *,
    upsert: ExposureEvent | None = None,
    remove: str | None = None,
    upserts: Iterable[ExposureEvent] = (),
) -> list[dict[str, str]]:
    """The feed items after inbound changes, without reading the table: ``items`` (the
    stored feed) less the changed or removed notifications and the items no longer active,
    plus ``upsert`` and ``upserts`` that are active, in the same order as ``active_items``.

    ``items`` are in that order already (every writer keeps it), so they stay as they are
    and the additions are merged in: at 100,000 items, parsing every time would be most of
    the job's budget. ``ValueError`` when an item lacks a valid ``start``/``end`` (the
    caller rebuilds).
    """
    added = [*upserts, *([upsert] if upsert else [])]
    changed = {event.notification_id for event in added} | ({remove} if remove else set())
    cutoff = now - timedelta(days=active_days)
    cutoff_second = format_utc(cutoff.replace(microsecond=0))[:19]
    matches = _FEED_TIME.fullmatch
    kept: list[dict[str, str]] = []
    for item in items:
        start, end = item.get("start", ""), item.get("end", "")
        if not (matches(start) and matches(end)):
            raise ValueError("feed item without valid times")
        if item.get("notificationId", "") in changed:
            continue
        second = end[:19]
        if second > cutoff_second or (second == cutoff_second and _parsed(end) >= cutoff):
            kept.append(dict(item))
    latest = {event.notification_id: event for event in added}  # the last change wins
    for event in sorted(latest.values(), key=lambda e: (e.start, e.notification_id)):
        if event.is_active(now, active_days):
            bisect.insort(kept, event.feed_item(), key=_order)
    return kept


def _parsed(text: str) -> datetime:
    moment = parse_utc(text)
    if moment is None:
        raise ValueError("feed item without valid times")
    return moment


def _order(item: Mapping[str, str]) -> tuple[datetime, str]:
    """``active_items``'s order for a feed item: start, then notification id."""
    return _parsed(item["start"]), item.get("notificationId", "")


FEED_COMPRESSION_LEVEL = 3
"""gzip level of the feed: at 100,000 items level 6 costs 0.7 s more than 3 (of the job's
3 s) for a file ~6 % smaller; phones fetch it through CloudFront's cache."""


def feed_document(items: Sequence[Mapping[str, str]]) -> bytes:
    """``current-exposure-events.json``, gzip-compressed (mtime 0: same items, same bytes)."""
    body = json.dumps({"items": list(items)}, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(body.encode("utf-8"), compresslevel=FEED_COMPRESSION_LEVEL, mtime=0)


def push_payload(events: Sequence[ExposureEvent]) -> str:
    """The ``payload`` of the push: a JSON array of feed items, as a string."""
    return json.dumps([e.feed_item() for e in events], separators=(",", ":"), ensure_ascii=False)


# A data-only message reaches an iOS app in the background only as an APNs background push
# (push type ``background``, priority 5 — APNs refuses 10 for it — and ``content-available``);
# Android holds a normal-priority data message back in Doze, so it goes out high priority
# (CLIENTS.md, "Push").
APNS_BACKGROUND_HEADERS = {"apns-push-type": "background", "apns-priority": "5"}
ANDROID_PRIORITY = "high"


def push_message(events: Sequence[ExposureEvent]) -> dict[str, Any]:
    """The FCM HTTP v1 request body: a data message to every phone (topic ``all``), with the
    delivery blocks each platform needs to wake the app."""
    return {
        "message": {
            "topic": PUSH_TOPIC,
            "data": {"type": PUSH_TYPE, "payload": push_payload(events)},
            "apns": {
                "headers": dict(APNS_BACKGROUND_HEADERS),
                "payload": {"aps": {"content-available": 1}},
            },
            "android": {"priority": ANDROID_PRIORITY},
        }
    }
