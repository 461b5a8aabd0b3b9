"""Pure rules of diary uploads (DESIGN §2.3): what an upload must look like and the
retention cut. No I/O here: ``now`` and the limits are parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from covidtracer.diary.settings import DiarySettings
from covidtracer.validation import Problems, camel_fields, format_utc

CONSENT_CODE = re.compile(r"[a-zA-Z0-9]{6}")
DIARY_GLN = re.compile(r"(?:[0-9]{13})?")  # manual entries carry ""

ENTRY_SCANNED, ENTRY_MANUAL = 0, 1
NOTE_MAX = 255
LOCATION_NAME_MAX = 255

DIARY_FIELDS = ("consentCode", "locations")
ENTRY_FIELDS = ("gln", "locationName", "note", "entryType", "time")


@dataclass(frozen=True)
class DiaryEntry:
    gln: str
    location_name: str
    note: str
    entry_type: int
    time: datetime

    def wire(self) -> dict[str, Any]:
        """The entry as NCTS receives it: the app's own field names."""
        return {**camel_fields(self), "time": format_utc(self.time)}


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
