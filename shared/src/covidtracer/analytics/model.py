"""The one schema of the services' own analytics events, and how a record is written and read.

A record is one JSON object per line (Firehose concatenates records as they are; the newline
makes each S3 object JSON Lines)::

    {"schema": 1, "id": "3f…", "name": "keys_uploaded", "time": "2026-12-01T09:05:12.345Z",
     "service": "enf", "stage": "prod", "version": "v1.42.0",
     "counts": {"keys": 14}, "categories": {"platform": "ios"}}

Privacy by construction (DESIGN §8): a record can only hold what ``CATALOGUE`` allows. The
name comes from a closed list and fixes the service; ``counts`` are whole numbers under names
the event declares; ``categories`` are values from closed vocabularies (anything else becomes
``"other"``), so no free text — an email, phone, name, code, key, GLN, token or id — has a
field to travel in. The record's own ``id`` is random (it lets the report drop Firehose's
at-least-once duplicates) and identifies nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from covidtracer.validation import format_utc_millis

SCHEMA_VERSION: Final = 1
# The subscription filter that picks the event lines out of a function's log (CloudWatch
# Logs' JSON filter syntax): only an event has a top-level ``schema`` field. Whatever else it
# lets through is dropped by ``parse_event``, which trusts nothing outside the schema.
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
LOG_FILTER_PATTERN: Final = f"{{ $.schema = {SCHEMA_VERSION} }}"
# Counts are small whole numbers (keys in an upload, entries in a diary, users in a file);
# the ceiling keeps a bug from writing something that is not a count.
MAX_COUNT: Final = 1_000_000_000
OTHER: Final = "other"
RELEASE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_ID = re.compile(r"^[0-9a-f]{32}$")


class EventRejected(ValueError):
    """An event the catalogue does not allow (unknown name, count or category name)."""


@dataclass(frozen=True)
class Vocabulary:
    """The values a category may take; anything else is recorded as ``"other"``."""

    values: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None

    def normalise(self, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, str):
            return OTHER
        if value in self.values or (self.pattern is not None and self.pattern.fullmatch(value)):
            return value
        return OTHER


def _words(*values: str) -> Vocabulary:
    return Vocabulary(frozenset(values))


# "enx": a key upload through Google's /v1/publish (an ENX phone or a Google-protocol app).
PLATFORM = _words("ios", "android", "test", "enx")
OS = _words("ios", "android")
# The app's version as phones send it to POST /metrics ("8.0.0"); free text is refused.
APP_VERSION = Vocabulary(pattern=re.compile(r"^\d{1,3}(?:\.\d{1,3}){0,3}$"))
# The events the ENF plugin and the app report to POST /metrics (COVID Green's names and the
# plugin's, CLIENTS.md); the server's allow-list is configuration, so others become "other".
METRIC = _words(
    "CONTACT_NOTIFICATION",
    "DAILY_ACTIVE_TRACE",
    "LOG_ERROR",
    "CALLBACK_REQUEST",
    "CONTACT_UPLOAD",
    "CALLBACK_OPTIN",
    "UPLOAD_VERIFICATION_FAILED",
    "CHECK_IN",
)
REPORT_TYPE = _words("confirmed", "likely", "user-report", "negative")
CODE_REJECTION = _words("unknown", "expired", "rate_limited")
PUSH_OUTCOME = _words("sent", "deferred")
CHANGE = _words("new", "updated", "repeat")


@dataclass(frozen=True)
class EventSpec:
    service: Literal["auth", "details", "export", "enf"]
    counts: frozenset[str] = frozenset()
    categories: Mapping[str, Vocabulary] = field(default_factory=dict)


def _spec(
    service: Literal["auth", "details", "export", "enf"],
    counts: tuple[str, ...] = (),
    **categories: Vocabulary,
) -> EventSpec:
    return EventSpec(service, frozenset(counts), categories)


EventName = Literal[
    "account_created",
    "sign_in_code_sent",
    "sign_in_succeeded",
    "sign_in_failed",
    "contact_details_created",
    "contact_details_replaced",
    "contact_details_updated",
    "contact_details_deleted",
    "diary_shared",
    "location_callback_requested",
    "exposure_event_received",
    "exposure_event_withdrawn",
    "exposure_push_sent",
    "exposure_feed_published",
    "details_export_written",
    "enf_device_registered",
    "enf_device_unregistered",
    "upload_code_issued",
    "upload_code_verified",
    "upload_code_rejected",
    "verification_certificate_issued",
    "keys_uploaded",
    "keys_revised",
    "export_files_written",
    "enf_metric_received",
    "enf_callback_requested",
]

# Every event a service may emit: where it happens, and the only fields it may carry.
CATALOGUE: Final[Mapping[str, EventSpec]] = {
    # auth: the Cognito triggers (locally run by the custom-auth driver)
    "account_created": _spec("auth"),  # PreSignUp accepted a new account
    "sign_in_code_sent": _spec("auth"),  # CreateAuthChallenge emailed a code
    "sign_in_succeeded": _spec("auth"),  # PostAuthentication
    "sign_in_failed": _spec("auth"),  # DefineAuthChallenge ended a session (3 wrong codes)
    # details: the app API
    "contact_details_created": _spec("details"),
    "contact_details_replaced": _spec("details"),  # PUT /user/details
    "contact_details_updated": _spec("details", ("fields",)),  # PATCH /user/details
    "contact_details_deleted": _spec("details", ("existed",)),
    "diary_shared": _spec("details", ("entries", "dropped")),
    "location_callback_requested": _spec("details"),
    "exposure_event_received": _spec("details", change=CHANGE),
    "exposure_event_withdrawn": _spec("details"),
    "exposure_push_sent": _spec("details", ("items",), outcome=PUSH_OUTCOME),
    "exposure_feed_published": _spec("details", ("items",)),
    # export: the personal-details export to NCTS
    "details_export_written": _spec("export", ("users", "tombstones", "messages")),
    # enf: the key server
    "enf_device_registered": _spec("enf", platform=PLATFORM),
    "enf_device_unregistered": _spec("enf"),
    "upload_code_issued": _spec("enf", report_type=REPORT_TYPE),
    "upload_code_verified": _spec("enf"),
    "upload_code_rejected": _spec("enf", reason=CODE_REJECTION),
    "verification_certificate_issued": _spec("enf"),  # POST /api/certificate
    "keys_uploaded": _spec("enf", ("keys",), platform=PLATFORM),
    "keys_revised": _spec("enf", ("keys",)),  # /v1/publish with a revision token
    "export_files_written": _spec("enf", ("files", "keys")),
    "enf_metric_received": _spec("enf", metric=METRIC, os=OS, app_version=APP_VERSION),
    "enf_callback_requested": _spec("enf"),
}

ENVELOPE: Final = frozenset(
    {"schema", "id", "name", "time", "service", "stage", "version", "counts", "categories"}
)


@dataclass(frozen=True)
class Event:
    id: str
    name: str
    time: datetime
    service: str
    stage: str
    version: str
    counts: Mapping[str, int]
    categories: Mapping[str, str]

    def record(self) -> bytes:
        """The Firehose record: one line of JSON."""
        body = {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "name": self.name,
            "time": iso_millis(self.time),
            "service": self.service,
            "stage": self.stage,
            "version": self.version,
            "counts": dict(self.counts),
            "categories": dict(self.categories),
        }
        return (json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n").encode()


iso_millis = format_utc_millis


def make_event(
    name: str,
    counts: Mapping[str, int],
    categories: Mapping[str, str],
    *,
    stage: str,
    version: str,
    now: datetime,
    new_id: str,
) -> Event:
    """A valid event or ``EventRejected``: unknown name, count or category name; a count that
    is not a whole number in range. A category value outside its vocabulary becomes
    ``"other"``."""
    spec = CATALOGUE.get(name)
    if spec is None:
        raise EventRejected(f"unknown event {name!r}")
    unknown = (set(counts) - spec.counts) | (set(categories) - set(spec.categories))
    if unknown:
        raise EventRejected(f"{name} has no field {sorted(unknown)[0]!r}")
    for key, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise EventRejected(f"{name}.{key} must be a whole number from 0 to {MAX_COUNT}")
    return Event(
        id=new_id,
        name=name,
        time=now.astimezone(UTC),
        service=spec.service,
        stage=stage,
        version=version if RELEASE_VERSION.fullmatch(version) else OTHER,
        counts=dict(counts),
        categories={k: spec.categories[k].normalise(v) for k, v in categories.items()},
    )


# ---------------------------------------------------------------------------- reading


def json_values(blob: bytes) -> Iterator[Any]:
    """Every JSON value in a Firehose object: records are concatenated as they were put (ours
    end with a newline, the app's may not), so values are read one after another."""
    text = blob.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    position, length = 0, len(text)
    while True:
        while position < length and text[position] in " \t\r\n":
            position += 1
        if position >= length:
            return
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            # A torn or foreign record: skip to the next line and carry on.
            newline = text.find("\n", position)
            if newline < 0:
                return
            position = newline + 1
            continue
        yield value


def records(blob: bytes) -> Iterator[Any]:
    """Every record in an object of the analytics bucket, in either form it arrives in: as
    written (the app's own events, put straight to the analytics stream), or inside the
    envelope a CloudWatch Logs subscription delivers to Firehose (the services' events:
    ``{"messageType": "DATA_MESSAGE", "logEvents": [{"message": "<the line>"}, ...]}``,
    gzip'd per record; the caller decompresses). Control messages, which CloudWatch Logs
    sends to check that the destination is reachable, carry no record."""
    for value in json_values(blob):
        if not (isinstance(value, dict) and "messageType" in value and "logEvents" in value):
            yield value
            continue
        if value["messageType"] != "DATA_MESSAGE" or not isinstance(value["logEvents"], list):
            continue
        for log_event in value["logEvents"]:
            message = log_event.get("message") if isinstance(log_event, dict) else None
            if isinstance(message, str):
                yield from json_values(message.encode())


def parse_event(value: Any) -> Event | None:
    """One of the services' events, or ``None`` for anything else (the app's own analytics
    events share the stream; a malformed record is skipped, never trusted)."""
    if not isinstance(value, dict) or set(value) != ENVELOPE:
        return None
    if value["schema"] != SCHEMA_VERSION or not isinstance(value["id"], str):
        return None
    spec = CATALOGUE.get(value["name"]) if isinstance(value["name"], str) else None
    if spec is None or value["service"] != spec.service or not _ID.fullmatch(value["id"]):
        return None
    counts, categories = value["counts"], value["categories"]
    if not isinstance(counts, dict) or not isinstance(categories, dict):
        return None
    try:
        time = datetime.fromisoformat(str(value["time"]).replace("Z", "+00:00"))
        return make_event(
            value["name"],
            counts,
            categories,
            stage=str(value["stage"]),
            version=str(value["version"]),
            now=time if time.tzinfo else time.replace(tzinfo=UTC),
            new_id=value["id"],
        )
    except (EventRejected, ValueError, TypeError):
        return None
