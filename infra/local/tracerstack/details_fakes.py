"""In-memory twins of the details app's stores (contact details, exposure events, the
feed) and of its partners (NCTS, FCM), and sample requests, for the unit tests, the stores'
contract tests and the app's tests. Dev only: never shipped (``covidtracer`` must not
import this)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from covidtracer.contactdetails.model import ContactDetails, apply_details
from covidtracer.contactdetails.repository import DetailsChanges
from covidtracer.errors import NotFound, Unavailable
from covidtracer.exposures.model import ExposureEvent, FeedChanged, StoredEvent
from covidtracer.exposures.service import Dependencies as ExposuresDependencies
from covidtracer.exposures.settings import ExposureEventSettings
from covidtracer.ncts import ConsentCodeRejected
from covidtracer.ratelimit.repository import MemoryCounters


def twin_or_real[S](param: str, twin: Callable[[], S], real: Callable[[], S]) -> S:
    """A contract test's store for its fixture's ``param``: the in-memory twin for
    ``"memory"``, else the real adapter (moto's DynamoDB or S3)."""
    return twin() if param == "memory" else real()


class MemoryExposureEvents:
    def __init__(self) -> None:
        self.items: dict[str, tuple[StoredEvent, int]] = {}

    def get(self, notification_id: str) -> StoredEvent | None:
        found = self.items.get(notification_id)
        return found[0] if found else None

    def get_many(self, notification_ids: Sequence[str]) -> list[StoredEvent]:
        return [self.items[n][0] for n in dict.fromkeys(notification_ids) if n in self.items]

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

    def mark_withdrawn(self, notification_id: str) -> None:
        found = self.items.get(notification_id)
        if found:
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


class RecordingNcts:
    """NCTS as the details app sees it: records what was sent; ``issued`` consent codes are
    accepted, others refused (``ConsentCodeRejected``); ``down`` makes every call
    ``Unavailable`` (nothing recorded)."""

    def __init__(self, issued: tuple[str, ...] = ()) -> None:
        self.issued = set(issued)
        self.down = False
        self.diaries: list[tuple[str, list[Mapping[str, Any]]]] = []
        self.callbacks: list[Mapping[str, Any]] = []

    def send_location_history(self, consent_code: str, locations: list[Mapping[str, Any]]) -> None:
        if self.down:
            raise Unavailable("ncts")
        if consent_code not in self.issued:
            raise ConsentCodeRejected()
        self.diaries.append((consent_code, locations))

    def send_callback_request(self, request: Mapping[str, Any]) -> None:
        if self.down:
            raise Unavailable("ncts")
        self.callbacks.append(request)


class RecordingFcm:
    """FCM: records each message; ``down`` refuses them (``Unavailable``)."""

    def __init__(self) -> None:
        self.down = False
        self.sent: list[Mapping[str, Any]] = []

    def send(self, message: Mapping[str, Any]) -> None:
        if self.down:
            raise Unavailable("fcm")
        self.sent.append(message)


# ---------------------------------------------------------------------------- sample requests
#
# Valid requests as the app and NCTS send them, for the unit tier and the HTTP tier alike;
# ``overrides`` break one field at a time (``MISSING`` leaves a field out).

MISSING: Any = object()
GLN = "1234567890001"
DETAILS = {
    "firstName": "Aroha",
    "middleName": "Mere",
    "lastName": "Smith",
    "phone": "+64 21 012 3456",
    "dateOfBirth": "1990-01-02",
    "gender": "female",
    "ethnicity": {"selected": ["Māori", "NZ European"], "other": "Tongan"},
}


def iso_millis(moment: datetime) -> str:
    """A time as the app sends it: UTC with milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def diary_entry(now: datetime, **overrides: Any) -> dict[str, Any]:
    """A scanned visit a day before ``now``."""
    entry = {
        "gln": "9429300000000",
        "locationName": "Blue Stone Cafe",
        "note": "with Sam",
        "entryType": 0,
        "time": iso_millis(now - timedelta(days=1)),
        **overrides,
    }
    return {name: value for name, value in entry.items() if value is not MISSING}


def exposure_event(
    notification_id: str = "a1k4a000000DaLsAAK",
    *,
    now: datetime,
    days_ago: float = 1,
    **overrides: Any,
) -> dict[str, Any]:
    """An event of interest from NCTS: an hour at ``GLN`` that started ``days_ago``."""
    start = now.replace(microsecond=0) - timedelta(days=days_ago)
    return {
        "eventId": "a0l4a0000004xhcAAA",
        "notificationId": notification_id,
        "gln": GLN,
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "systemNotificationBody": "You were at a location of interest.",
        "appBannerTitle": "Location of interest",
        "appBannerBody": "Isolate and call Healthline.",
        "appBannerLinkLabel": "More",
        "appBannerLinkUrl": "https://covid19.govt.nz",
        "appBannerRequestCallbackEnabled": True,
        **overrides,
    }


def callback_request(phone: str = "+64 21 012 3456", **overrides: Any) -> dict[str, Any]:
    """A callback request for the event ``match1`` at ``GLN``."""
    return {
        "eventId": "a0l4a0000004xhcAAA",
        "notificationId": "match1",
        "gln": GLN,
        "firstName": "Aroha",
        "lastName": "Smith",
        "phone": phone,
        "contactNotes": "Call after 5pm",
        **overrides,
    }


def exposure_dependencies(**overrides: Any) -> ExposuresDependencies:
    """The exposure use cases' dependencies over in-memory twins (settings: the defaults)."""
    deps: dict[str, Any] = {
        "events": MemoryExposureEvents(),
        "feed": MemoryFeedStore(),
        "counters": MemoryCounters(),
        "ncts": RecordingNcts(),
        "fcm": RecordingFcm(),
        "rules": ExposureEventSettings(
            feed_bucket="feed",
            ncts_api_key_secret_id="ncts-key-secret",  # noqa: S106 - the name of a secret
        ),
        "ncts_api_key": lambda: "ncts-key",
    }
    return ExposuresDependencies(**{**deps, **overrides})
