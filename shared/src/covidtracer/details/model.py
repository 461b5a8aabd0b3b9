"""Pure rules of the app API: what a diary upload, a callback request and an exposure event
must look like, the GLN hash, and the exact feed and push shapes the app reads.

No I/O here: time and limits are parameters, so the rules are tested as tables.
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
from datetime import date, datetime, timedelta
from typing import Any

from covidtracer.settings import DiarySettings
from covidtracer.validation import TEXT_MESSAGE, Problems, format_utc, is_text, parse_utc, pascal

CONSENT_CODE = re.compile(r"[a-zA-Z0-9]{6}")
GLN = re.compile(r"[0-9]{13}")
DIARY_GLN = re.compile(r"(?:[0-9]{13})?")  # manual entries carry ""
# NCTS (Salesforce) record ids: 15/18 characters today; a little room, and path-safe.
RECORD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
HTTPS_URL = re.compile(r"https://[!-~]{1,2040}")

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
    # No count limit: older apps send the whole 60-day diary at once (CLIENTS.md); the
    # request's size bounds it (``DiarySettings.max_body_bytes``).
    if not isinstance(locations, list):
        problems.add("Locations", "This field is required and must be a list.")
    elif not locations:
        problems.add("Locations", "Send at least one location.")
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
        location, "note", key=f"{prefix}Note", required=False, max_length=NOTE_MAX,
        multiline=True,
    )  # fmt: skip
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
    phone = _phone(problems, body)
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
    event_id = problems.string(body, "eventId", pattern=RECORD_ID)
    notification_id = problems.string(body, "notificationId", pattern=RECORD_ID)
    gln = problems.string(body, "gln", pattern=GLN, pattern_message="The GLN must be 13 digits.")
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


# ---------------------------------------------------------------- contact details (§2.2)

# The app's own rule for names (the same pattern it checks before sending).
PERSON_NAME = re.compile(r"[-.'`ʼ‘’A-Za-zĀ-ŌÀ-ÖØ-öø-ÿŠŽā-ɏ ]*")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MIDDLE_NAME_MAX = 100
# Raw phone text before spaces are removed: E.164 is at most 16 characters, so 32 leaves room
# for any spacing a person types and still bounds what we parse.
PHONE_TEXT_MAX = 32
# The app offers a short list (and free text); 50 holds any of them and keeps the export small.
GENDER_MAX = 50
# Stats NZ's level-1 ethnic groups are 6 and level 4 has ~230; nobody ticks 20, and each
# label (or the free-text "other") fits in 100 characters.
ETHNICITY_SELECTED_MAX = 20
ETHNICITY_TEXT_MAX = 100
MAX_AGE_YEARS = 130
# A date of birth is "in the past" if it is not later than today anywhere on Earth (UTC+14):
# a baby born today in New Zealand has a date of birth that is still tomorrow in UTC.
EARLIEST_TIME_ZONE = timedelta(hours=14)

DETAILS_FIELDS = (
    "firstName", "middleName", "lastName", "phone", "dateOfBirth", "gender", "ethnicity",
)  # fmt: skip
REQUIRED_DETAILS = ("firstName", "lastName", "phone")
# Apps 3.0.0–6.1.1 create the record with one PATCH right after the first sign-in, and may
# leave the phone out (CLIENTS.md): a PATCH creates a record from the names alone.
REQUIRED_TO_CREATE = ("firstName", "lastName")
ETHNICITY_FIELDS = ("selected", "other")

_PHONE_MESSAGE = "The phone number must be in international format (+64 …)."
_NAME_MESSAGE = "Names may contain letters, spaces, hyphens, apostrophes and full stops only."


@dataclass(frozen=True)
class Ethnicity:
    selected: tuple[str, ...]
    other: str | None = None

    def wire(self) -> dict[str, Any]:
        """As stored and returned: ``other`` omitted when there is none."""
        value: dict[str, Any] = {"selected": list(self.selected)}
        if self.other is not None:
            value["other"] = self.other
        return value


@dataclass(frozen=True)
class ContactDetails:
    """A person's stored contact details (the ``PersonalDetails`` item contract in
    ``covidtracer.personaldetails.model``); ``None`` optional fields are absent, never empty."""

    user_id: str
    email: str
    first_name: str
    last_name: str
    # Absent only for a record a PATCH created without one (REQUIRED_TO_CREATE).
    phone: str | None
    updated_at: str
    middle_name: str | None = None
    date_of_birth: str | None = None
    gender: str | None = None
    ethnicity: Ethnicity | None = None

    def wire(self) -> dict[str, Any]:
        """The body of ``GET /user/details``: the record plus ``email`` and ``updatedAt``
        (the userId is the caller's own and is not repeated)."""
        body: dict[str, Any] = {"firstName": self.first_name}
        if self.middle_name is not None:
            body["middleName"] = self.middle_name
        body["lastName"] = self.last_name
        if self.phone is not None:
            body["phone"] = self.phone
        if self.date_of_birth is not None:
            body["dateOfBirth"] = self.date_of_birth
        if self.gender is not None:
            body["gender"] = self.gender
        if self.ethnicity is not None:
            body["ethnicity"] = self.ethnicity.wire()
        body.update(email=self.email, updatedAt=self.updated_at)
        return body


# Field name on the wire -> attribute of ContactDetails.
DETAILS_ATTRIBUTES = {
    "firstName": "first_name",
    "middleName": "middle_name",
    "lastName": "last_name",
    "phone": "phone",
    "dateOfBirth": "date_of_birth",
    "gender": "gender",
    "ethnicity": "ethnicity",
}


def parse_details(
    body: Mapping[str, Any], *, now: datetime, partial: bool
) -> dict[str, str | Ethnicity | None]:
    """The fields a ``PUT`` (``partial=False``) or ``PATCH`` (``partial=True``) sets, by wire
    name; ``None`` clears an optional field. Raises ``ValidationError`` listing every problem.

    PUT needs ``firstName``, ``lastName`` and ``phone`` (the export's item contract requires
    a phone); PATCH takes any subset of the known fields, but cannot clear a required one.
    Names are trimmed; empty optional values read as "cleared"; the phone is returned in
    E.164 without spaces. Identity is never in the body: ``userId`` is an unknown field.
    """
    problems = Problems()
    problems.unknown_fields(body, DETAILS_FIELDS)
    changes: dict[str, str | Ethnicity | None] = {}

    def present(name: str) -> bool:
        return not partial or name in body

    for name in ("firstName", "lastName"):
        if present(name):
            value = problems.string(
                body, name, max_length=NAME_MAX, pattern=PERSON_NAME, pattern_message=_NAME_MESSAGE
            )
            if value is not None and not value.strip():
                problems.add(pascal(name), "This field is required.")
            elif value is not None:
                changes[name] = value.strip()
    if present("middleName"):
        middle = problems.string(
            body,
            "middleName",
            required=False,
            max_length=MIDDLE_NAME_MAX,
            pattern=PERSON_NAME,
            pattern_message=_NAME_MESSAGE,
        )
        if "middleName" not in problems.errors:
            changes["middleName"] = (middle or "").strip() or None
    if present("phone"):
        phone = _phone(problems, body)
        if phone is not None:
            changes["phone"] = phone
    if present("dateOfBirth"):
        born = _date_of_birth(problems, body, now)
        if "DateOfBirth" not in problems.errors:
            changes["dateOfBirth"] = born
    if present("gender"):
        gender = problems.string(body, "gender", required=False, max_length=GENDER_MAX)
        if "Gender" not in problems.errors:
            changes["gender"] = (gender or "").strip() or None
    if present("ethnicity"):
        ethnicity = _ethnicity(problems, body.get("ethnicity"))
        if not any(key.startswith("Ethnicity") for key in problems.errors):
            changes["ethnicity"] = ethnicity
    problems.raise_if_any()
    return changes


def apply_details(
    current: ContactDetails | None,
    changes: Mapping[str, str | Ethnicity | None],
    *,
    user_id: str,
    email: str,
    updated_at: str,
) -> ContactDetails:
    """The record after ``changes``: over ``current`` for a PATCH, from nothing for a PUT or
    for the PATCH that creates a record (``missing_to_create`` checks it may)."""
    base: dict[str, Any] = dict.fromkeys(DETAILS_ATTRIBUTES.values())
    if current is not None:
        base = {attribute: getattr(current, attribute) for attribute in DETAILS_ATTRIBUTES.values()}
    for name, value in changes.items():
        base[DETAILS_ATTRIBUTES[name]] = value
    return ContactDetails(user_id=user_id, email=email, updated_at=updated_at, **base)


def missing_to_create(changes: Mapping[str, str | Ethnicity | None]) -> dict[str, list[str]]:
    """What a PATCH lacks to create a record (``ValidationError`` errors; empty: nothing)."""
    return {
        pascal(name): ["This field is required to create the record."]
        for name in REQUIRED_TO_CREATE
        if not changes.get(name)
    }


def normalise_phone(text: str) -> str | None:
    """``+64 21 012 3456`` -> ``+64210123456``; ``None`` unless E.164 once spaces are gone."""
    phone = text.replace(" ", "")
    return phone if E164.fullmatch(phone) else None


def _phone(problems: Problems, body: Mapping[str, Any]) -> str | None:
    raw = problems.string(body, "phone", max_length=PHONE_TEXT_MAX)
    if raw is None:
        return None
    phone = normalise_phone(raw)
    if phone is None:
        problems.add("Phone", _PHONE_MESSAGE)
    return phone


def _date_of_birth(problems: Problems, body: Mapping[str, Any], now: datetime) -> str | None:
    if body.get("dateOfBirth") == "":
        return None  # cleared, like the other optional fields
    raw = problems.string(
        body,
        "dateOfBirth",
        required=False,
        pattern=DATE,
        pattern_message="The date of birth must be a date (YYYY-MM-DD).",
    )
    if not raw:
        return None
    try:
        born = date.fromisoformat(raw)
    except ValueError:
        problems.add("DateOfBirth", "The date of birth must be a date (YYYY-MM-DD).")
        return None
    latest = (now + EARLIEST_TIME_ZONE).date()
    if born > latest:
        problems.add("DateOfBirth", "The date of birth must be in the past.")
    elif born <= _years_before(now.date(), MAX_AGE_YEARS + 1):
        problems.add("DateOfBirth", f"The age must be at most {MAX_AGE_YEARS} years.")
    return raw


def _years_before(day: date, years: int) -> date:
    """The same day ``years`` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _ethnicity(problems: Problems, value: Any) -> Ethnicity | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add("Ethnicity", "This field must be an object with selected and other.")
        return None
    problems.unknown_fields(value, ETHNICITY_FIELDS, "Ethnicity.")
    selected = value.get("selected")
    labels: list[str] = []
    if selected is None:
        selected = []
    if not isinstance(selected, list):
        problems.add("Ethnicity.Selected", "This field must be a list of strings.")
    elif len(selected) > ETHNICITY_SELECTED_MAX:
        problems.add("Ethnicity.Selected", f"Select at most {ETHNICITY_SELECTED_MAX}.")
    else:
        for index, label in enumerate(selected):
            if not isinstance(label, str) or not label.strip():
                problems.add(f"Ethnicity.Selected[{index}]", "This must be a non-empty string.")
            elif not is_text(label):
                problems.add(f"Ethnicity.Selected[{index}]", TEXT_MESSAGE)
            elif len(label) > ETHNICITY_TEXT_MAX:
                problems.add(
                    f"Ethnicity.Selected[{index}]",
                    f"This must be at most {ETHNICITY_TEXT_MAX} characters.",
                )
            else:
                labels.append(label.strip())
    other = problems.string(
        value, "other", key="Ethnicity.Other", required=False, max_length=ETHNICITY_TEXT_MAX
    )
    other = (other or "").strip() or None
    if not labels and other is None:
        return None  # nothing chosen: the attribute is omitted, as the item contract asks
    return Ethnicity(tuple(labels), other)
