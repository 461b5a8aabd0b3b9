"""The ``usage-report`` job: one day's events in the analytics bucket become the day's row of
the usage CSV (``reports/usage/daily/YYYY-MM-DD.csv``) and of the file with every day so far
(``reports/usage/nz-covid-tracer-app-usage.csv``). Re-running a day replaces its row, so a
late run or a repeat is harmless."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from covidtracer import logs
from covidtracer.analytics import model as events
from covidtracer.analytics.model import iso_millis, parse_event
from covidtracer.usagereport import model
from covidtracer.usagereport.repository import EventArchive, ReportStore
from covidtracer.usagereport.settings import UsageReportSettings

log = logs.get_logger(__name__)

CSV = "text/csv; charset=utf-8"
ALL_DAYS_FILE = "nz-covid-tracer-app-usage.csv"


@dataclass(frozen=True)
class ReportDeps:
    """Where the events are read from, where the report goes, and the report's knobs."""

    archive: EventArchive
    reports: ReportStore
    config: UsageReportSettings


def daily_key(settings: UsageReportSettings, day: date) -> str:
    return f"{settings.reports_prefix}daily/{day.isoformat()}.csv"


def all_days_key(settings: UsageReportSettings) -> str:
    return f"{settings.reports_prefix}{ALL_DAYS_FILE}"


def publish_usage_report(deps: ReportDeps, day: date | None, now: datetime) -> dict[str, Any]:
    """Writes the row for ``day`` (``None``: per ``model.report_day``) and returns it with what
    was read. Raises ``Unavailable`` when the bucket cannot be read or written."""
    settings = deps.config
    zone, hour = settings.timezone, settings.day_ends_at_hour
    day = day or model.report_day(now, zone, hour, include_open=settings.include_open_window)
    window = model.window_for(day, zone, hour)
    figures = model.Tally()
    objects = records = foreign = 0
    for blob in deps.archive.objects(model.partitions(window, settings.events_prefix)):
        objects += 1
        for value in events.records(blob):
            records += 1
            event = parse_event(value)
            if event is None:
                foreign += 1  # the app's own events, or a record this job cannot trust
                continue
            if event.stage == settings.stage:
                figures.add(event, window)
    values = model.row(window, figures)
    deps.reports.write(daily_key(settings, day), model.render_csv([values]), CSV)
    rows = model.upsert(model.parse_csv(deps.reports.read(all_days_key(settings))), values)
    deps.reports.write(all_days_key(settings), model.render_csv(rows), CSV)
    summary: dict[str, Any] = {
        "day": day.isoformat(),
        "windowStart": iso_millis(window.start),
        "windowEnd": iso_millis(window.end),
        "objects": objects,
        "records": records,
        "otherRecords": foreign,
        "events": len(figures.seen),
        "duplicates": figures.duplicates,
        "row": values,
        "key": daily_key(settings, day),
    }
    log.info(
        "usage report written",
        extra={k: v for k, v in summary.items() if k not in ("row", "windowStart", "windowEnd")},
    )
    return summary
