"""The daily usage figures, as the Ministry of Health published them for NZ COVID Tracer.

Pure rules: which window a report date covers, which objects may hold its events, how the
events become figures, and the CSV. The Ministry's page ("COVID-19: NZ COVID Tracer app
data", last updated 17 February 2022) defined the figures and measured each day "from 1pm to
1pm NZDT"; a row here is dated by the day its window ends (13:00 New Zealand time, daylight
saving followed), with dates written ``YYYY-MM-DD`` as in the Ministry's CSV files.

The published columns come first, then figures only the backend has (``PUBLISHED`` says
which). Three published columns could only ever come from the app's own analytics (Pinpoint,
now Firehose through the identity pool): ``Active Devices`` (devices that scanned a poster or
added a manual entry), ``Poster Scans`` and ``Manual Entries``; the app never tells the
backend about a scan. They stay empty until the app's events are read too. Nor does the
backend see the app's NZ COVID Pass use, which later files also reported.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from covidtracer.analytics.model import Event

# Firehose buffers up to 300 s (the template's BufferingHints) and files an object under the
# hour it is written, so a window's events can sit in objects up to this long after its end.
LATENESS = timedelta(hours=1)
DATE_HEADER = "Date"


@dataclass(frozen=True)
class Window:
    """The report ``day``: events with ``start <= time < end`` (UTC)."""

    day: date
    start: datetime
    end: datetime


def window_for(day: date, zone: str, ends_at_hour: int) -> Window:
    """The window dated ``day``: from ``ends_at_hour`` local time the day before to the same
    hour on ``day`` (23 or 25 hours on the days daylight saving starts or ends)."""
    tz = ZoneInfo(zone)
    end = datetime.combine(day, time(ends_at_hour), tz)
    start = datetime.combine(day - timedelta(days=1), time(ends_at_hour), tz)
    return Window(day, start.astimezone(UTC), end.astimezone(UTC))


def report_day(now: datetime, zone: str, ends_at_hour: int, *, include_open: bool) -> date:
    """The day to report at ``now``: the last closed window, or (``include_open``) the one
    still running."""
    local = now.astimezone(ZoneInfo(zone))
    running = local.date() + timedelta(days=1 if local.hour >= ends_at_hour else 0)
    return running if include_open else running - timedelta(days=1)


def partitions(window: Window, events_prefix: str) -> list[str]:
    """The date prefixes (``events/YYYY/MM/DD/``, UTC, as Firehose files objects) that can
    hold the window's events."""
    first, last = window.start.date(), (window.end + LATENESS).date()
    days = (last - first).days + 1
    return [f"{events_prefix}{(first + timedelta(d)).strftime('%Y/%m/%d')}/" for d in range(days)]


@dataclass
class Tally:
    """What the window's events add up to; each event once (Firehose may deliver twice)."""

    events: Counter[str] = field(default_factory=Counter)
    sums: Counter[tuple[str, str]] = field(default_factory=Counter)
    categories: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0
    outside: int = 0

    def add(self, event: Event, window: Window) -> None:
        if not window.start <= event.time < window.end:
            self.outside += 1
            return
        if event.id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(event.id)
        self.events[event.name] += 1
        for key, value in event.counts.items():
            self.sums[(event.name, key)] += value
        for key, category in event.categories.items():
            self.categories[(event.name, key, category)] += 1


def tally(events: Iterable[Event], window: Window) -> Tally:
    result = Tally()
    for event in events:
        result.add(event, window)
    return result


@dataclass(frozen=True)
class Column:
    header: str
    # None: only the app could supply the figure, so the cell stays empty.
    figure: Callable[[Tally], int] | None
    published: bool


def _events(name: str) -> Callable[[Tally], int]:
    return lambda t: t.events[name]


def _sum(name: str, key: str) -> Callable[[Tally], int]:
    return lambda t: t.sums[(name, key)]


def _category(name: str, key: str, value: str) -> Callable[[Tally], int]:
    return lambda t: t.categories[(name, key, value)]


COLUMNS: tuple[Column, ...] = (
    # The Ministry's published columns.
    # Accounts created at sign-in (PreSignUp); a person who never enters the emailed code
    # still has an account, as an app registration always did once the form was sent.
    Column("App Registrations", _events("account_created"), True),
    Column("Active Devices", None, True),
    # "Unique devices that have checked the server for new exposure keys in the last 24
    # hours": the plugin's DAILY_ACTIVE_TRACE, which the server takes once per device a day.
    Column("Bluetooth Active (24h)", _category("enf_metric_received", "metric",
                                               "DAILY_ACTIVE_TRACE"), True),
    Column("Poster Scans", None, True),
    Column("Manual Entries", None, True),
    # Figures only the backend has.
    Column("Sign-ins", _events("sign_in_succeeded"), False),
    Column("Bluetooth Registrations", _events("enf_device_registered"), False),
    Column("Exposure Notifications", _category("enf_metric_received", "metric",
                                               "CONTACT_NOTIFICATION"), False),
    Column("Upload Codes Issued", _events("upload_code_issued"), False),
    Column("Key Uploads", _events("keys_uploaded"), False),
    Column("Keys Uploaded", _sum("keys_uploaded", "keys"), False),
    Column("Location Alerts Published", _category("exposure_event_received", "change", "new"),
           False),
    Column("Diaries Shared", _events("diary_shared"), False),
    Column("Diary Entries Shared", _sum("diary_shared", "entries"), False),
    Column("Callbacks Requested",
           lambda t: t.events["location_callback_requested"] + t.events["enf_callback_requested"],
           False),
    Column("Contact Details Exported", _sum("details_export_written", "users"), False),
)  # fmt: skip

HEADERS: tuple[str, ...] = (DATE_HEADER, *(c.header for c in COLUMNS))
APP_ONLY: tuple[str, ...] = tuple(c.header for c in COLUMNS if c.figure is None)


def row(window: Window, figures: Tally) -> dict[str, str]:
    values = {DATE_HEADER: window.day.isoformat()}
    for column in COLUMNS:
        values[column.header] = "" if column.figure is None else str(column.figure(figures))
    return values


def render_csv(rows: Sequence[Mapping[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADERS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for values in rows:
        writer.writerow({h: values.get(h, "") for h in HEADERS})
    return out.getvalue().encode()


def parse_csv(body: bytes | None) -> list[dict[str, str]]:
    """The rows of a report written before (columns it lacks are left empty)."""
    if not body:
        return []
    reader = csv.DictReader(io.StringIO(body.decode("utf-8")))
    return [dict(r) for r in reader if r.get(DATE_HEADER)]


def upsert(rows: Iterable[Mapping[str, str]], new: Mapping[str, str]) -> list[dict[str, str]]:
    """``rows`` with ``new`` in place of its date's row, oldest date first."""
    by_date = {r[DATE_HEADER]: dict(r) for r in rows}
    by_date[new[DATE_HEADER]] = dict(new)
    return [by_date[d] for d in sorted(by_date)]
