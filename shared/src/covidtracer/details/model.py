"""Pure rules of the app API: what a diary upload, a callback request and an exposure event
must look like, the GLN hash, and the exact feed and push shapes the app reads.

No I/O here: time and limits are parameters, so the rules are tested as tables.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from covidtracer.settings import DiarySettings
from covidtracer.validation import Problems, format_utc, parse_utc

CONSENT_CODE = re.compile(r"[a-zA-Z\d]{6}")
GLN = re.compile(r"\d{13}")
DIARY_GLN = re.compile(r"(?:\d{13})?")  # manual entries carry ""
# NCTS (Salesforce) record ids: 15/18 characters today; a little room, and path-safe.
RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
E164 = re.compile(r"\+[1-9]\d{6,14}")
HTTPS_URL = re.compile(r"https://[^\s]{1,2040}")

ENTRY_SCANNED, ENTRY_MANUAL = 0, 1
NOTE_MAX = 255
LOCATION_NAME_MAX = 255
NAME_MAX = 50
CONTACT_NOTES_MAX = 255
# FCM refuses data messages over 4096 bytes; an event must fit in one push.
PUSH_PAYLOAD_MAX_BYTES = 4000

PUSH_TOPIC = "all"
PUSH_TYPE = "exposure-event-notifications"

DIARY_FIELDS = ("consentCode", "locations")
ENTRY_FIELDS = ("gln", "locationName", "note", "entryType", "time")
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


# ---------------------------------------------------------------------------- diary (§2.3)


@dataclass(frozen=True)
class DiaryEntry:
    gln: str
    location_name: str
    note: str
    entry_type: int
    time: datetime

    def wire(self) -> dict[str, Any]:
        """The entry as NCTS receives it: the app's own field names."""
        return {
            "gln": self.gln,
            "locationName": self.location_name,
            "note": self.note,
            "entryType": self.entry_type,
            "time": format_utc(self.time),
        }


@dataclass(frozen=True)
class DiaryUpload:
    consent_code: str
    entries: tuple[DiaryEntry, ...]

    def within_retention(self, now: datetime, retention_days: int) -> DiaryUpload:
        """Only entries at most ``retention_days`` old: older ones never leave the backend."""
        cutoff = now - timedelta(days=retention_days)
        kept = tuple(entry for entry in self.entries if entry.time >= cutoff)
        return DiaryUpload(self.consent_code, kept)


def parse_diary_upload(
    body: Mapping[str, Any], *, now: datetime, rules: DiarySettings
) -> DiaryUpload:
    """The upload, or ``ValidationError`` listing every problem (keys like
    ``Locations[3].Time``)."""
    problems = Problems()
    problems.unknown_fields(body, DIARY_FIELDS)
    code = problems.string(
        body,
        "consentCode",
        pattern=CONSENT_CODE,
        pattern_message="The consent code must be 6 letters or digits.",
    )
    locations = body.get("locations")
    entries: list[DiaryEntry] = []
    if not isinstance(locations, list):
        problems.add("Locations", "This field is required and must be a list.")
    elif not 1 <= len(locations) <= rules.max_locations:
        problems.add("Locations", f"Send between 1 and {rules.max_locations} locations.")
    else:
        latest = now + timedelta(seconds=rules.clock_skew_seconds)
        for index, location in enumerate(locations):
            entry = _diary_entry(problems, f"Locations[{index}].", location, latest)
            if entry is not None:
                entries.append(entry)
    problems.raise_if_any()
    assert code is not None
    return DiaryUpload(code, tuple(entries))


def _diary_entry(
    problems: Problems, prefix: str, location: Any, latest: datetime
) -> DiaryEntry | None:
    if not isinstance(location, dict):
        problems.add(prefix.rstrip("."), "Each location must be an object.")
        return None
    before = len(problems.errors)
    problems.unknown_fields(location, ENTRY_FIELDS, prefix)
    gln = problems.string(
        location,
        "gln",
        key=f"{prefix}Gln",
        required=False,
        pattern=DIARY_GLN,
        pattern_message="The GLN must be 13 digits, or empty for a manual entry.",
    )
    name = problems.string(
        location,
        "locationName",
        key=f"{prefix}LocationName",
        required=False,
        max_length=LOCATION_NAME_MAX,
    )
    note = problems.string(
        location, "note", key=f"{prefix}Note", required=False, max_length=NOTE_MAX
    )
    entry_type = location.get("entryType")
    if (
        isinstance(entry_type, bool)
        or not isinstance(entry_type, int)
        or entry_type not in (ENTRY_SCANNED, ENTRY_MANUAL)
    ):
        problems.add(f"{prefix}EntryType", "The entry type must be 0 (scanned) or 1 (manual).")
    time = problems.utc_time(location, "time", key=f"{prefix}Time")
    if time is not None and time > latest:
        problems.add(f"{prefix}Time", "The time must not be in the future.")
    if len(problems.errors) != before or time is None or not isinstance(entry_type, int):
        return None
    return DiaryEntry(gln or "", name or "", note or "", entry_type, time)


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
        return {
            "eventId": self.event_id,
            "notificationId": self.notification_id,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "phone": self.phone,
            "contactNotes": self.contact_notes,
        }


def parse_callback_request(body: Mapping[str, Any]) -> CallbackRequest:
    """The request, or ``ValidationError``. The phone is returned in E.164 (spaces removed)."""
    problems = Problems()
    problems.unknown_fields(body, CALLBACK_FIELDS)
    event_id = problems.string(body, "eventId", pattern=RECORD_ID)
    notification_id = problems.string(body, "notificationId", pattern=RECORD_ID)
    gln = problems.string(body, "gln", pattern=GLN, pattern_message="The GLN must be 13 digits.")
    first_name = problems.string(body, "firstName", max_length=NAME_MAX)
    last_name = problems.string(body, "lastName", required=False, max_length=NAME_MAX)
    raw_phone = problems.string(body, "phone", max_length=32)
    phone = raw_phone.replace(" ", "") if raw_phone is not None else None
    if phone is not None and not E164.fullmatch(phone):
        problems.add("Phone", "The phone number must be in international format (+64 …).")
    notes = problems.string(body, "contactNotes", required=False, max_length=CONTACT_NOTES_MAX)
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
    """An event as stored: ``push_pending`` until FCM has accepted its push; ``version``
    changes on every write, so a late push confirmation never clears a newer pending push."""

    event: ExposureEvent
    push_pending: bool
    version: str


def expires_at(event: ExposureEvent, active_days: int) -> int:
    """TTL (epoch seconds): a day after the event leaves the feed; the feed itself filters
    by time, because TTL deletes late."""
    return int(event.end.timestamp()) + (active_days + 1) * 86_400


def parse_exposure_event(body: Mapping[str, Any]) -> ExposureEvent:
    """The event NCTS sent, or ``ValidationError`` listing every problem."""
    problems = Problems()
    problems.unknown_fields(body, EVENT_FIELDS)
    event_id = problems.string(body, "eventId", pattern=RECORD_ID)
    notification_id = problems.string(body, "notificationId", pattern=RECORD_ID)
    gln = problems.string(body, "gln", pattern=GLN, pattern_message="The GLN must be 13 digits.")
    start = problems.utc_time(body, "start")
    end = problems.utc_time(body, "end")
    if start is not None and end is not None and not start < end:
        problems.add("End", "The end must be after the start.")
    texts: dict[str, str] = {}
    for name, (required, max_length) in EVENT_TEXTS.items():
        text = problems.string(body, name, required=required, max_length=max_length)
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
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and all(isinstance(v, str) for v in item.values()) for item in items
    ):
        raise ValueError("not a feed document (items)")
    return items


def updated_items(
    items: Iterable[Mapping[str, str]],
    now: datetime,
    active_days: int,
    *,
    upsert: ExposureEvent | None = None,
    remove: str | None = None,
) -> list[dict[str, str]]:
    """The feed items after one inbound change, without reading the table: ``items`` (the
    stored feed) less the changed or removed notification and the items no longer active,
    plus ``upsert`` if it is active, in the same order as ``active_items``.

    ``ValueError`` when an item lacks a valid ``start``/``end`` (the caller rebuilds).
    """
    changed = {upsert.notification_id if upsert else None, remove} - {None}
    keyed: list[tuple[datetime, str, dict[str, str]]] = []
    for item in items:
        start, end = parse_utc(item.get("start", "")), parse_utc(item.get("end", ""))
        if start is None or end is None:
            raise ValueError("feed item without valid times")
        notification_id = item.get("notificationId", "")
        if notification_id not in changed and _ended_within(end, now, active_days):
            keyed.append((start, notification_id, dict(item)))
    if upsert is not None and upsert.is_active(now, active_days):
        keyed.append((upsert.start, upsert.notification_id, upsert.feed_item()))
    keyed.sort(key=lambda entry: (entry[0], entry[1]))
    return [item for _, _, item in keyed]


def feed_document(items: Sequence[Mapping[str, str]]) -> bytes:
    """``current-exposure-events.json``, gzip-compressed (mtime 0: same items, same bytes)."""
    body = json.dumps({"items": list(items)}, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(body.encode("utf-8"), compresslevel=6, mtime=0)


def push_payload(events: Sequence[ExposureEvent]) -> str:
    """The ``payload`` of the push: a JSON array of feed items, as a string."""
    return json.dumps([e.feed_item() for e in events], separators=(",", ":"), ensure_ascii=False)


def push_message(events: Sequence[ExposureEvent]) -> dict[str, Any]:
    """The FCM HTTP v1 request body: a data message to every phone (topic ``all``)."""
    return {
        "message": {
            "topic": PUSH_TOPIC,
            "data": {"type": PUSH_TYPE, "payload": push_payload(events)},
        }
    }
