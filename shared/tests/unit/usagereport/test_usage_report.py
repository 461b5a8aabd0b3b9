"""The usage report's rules: 1 pm–1 pm New Zealand days, the figures, the CSV."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from itertools import count

import pytest

from covidtracer.analytics import model
from covidtracer.settings import AwsSettings
from covidtracer.usagereport import model as usage
from covidtracer.usagereport import service
from covidtracer.usagereport.repository import MemoryAnalytics
from covidtracer.usagereport.settings import UsageReportSettings

NZ = "Pacific/Auckland"
_ids = count()


def event(name: str, at: datetime, counts=None, categories=None, stage="prod") -> model.Event:
    return model.make_event(
        name,
        counts or {},
        categories or {},
        stage=stage,
        version="v1",
        now=at,
        new_id=f"{next(_ids):032x}",
    )


@pytest.mark.parametrize(
    ("day", "start", "end", "hours"),
    [
        # NZDT (UTC+13): 1 pm to 1 pm is exactly the UTC day before.
        (date(2026, 12, 2), datetime(2026, 12, 1, 0, tzinfo=UTC),
         datetime(2026, 12, 2, 0, tzinfo=UTC), 24),
        # NZST (UTC+12)
        (date(2026, 7, 15), datetime(2026, 7, 14, 1, tzinfo=UTC),
         datetime(2026, 7, 15, 1, tzinfo=UTC), 24),
        # Daylight saving starts on 27 September 2026: that day is 23 hours long.
        (date(2026, 9, 27), datetime(2026, 9, 26, 1, tzinfo=UTC),
         datetime(2026, 9, 27, 0, tzinfo=UTC), 23),
        # … and ends on 5 April 2026: 25 hours.
        (date(2026, 4, 5), datetime(2026, 4, 4, 0, tzinfo=UTC),
         datetime(2026, 4, 5, 1, tzinfo=UTC), 25),
    ],
)  # fmt: skip
def test_a_report_day_runs_from_1pm_to_1pm_new_zealand_time(day, start, end, hours) -> None:
    window = usage.window_for(day, NZ, 13)
    assert (window.start, window.end) == (start, end)
    assert window.end - window.start == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("now", "closed", "running"),
    [
        (datetime(2026, 12, 2, 0, 20, tzinfo=UTC), date(2026, 12, 2), date(2026, 12, 3)),  # 13:20
        (datetime(2026, 12, 1, 23, 59, tzinfo=UTC), date(2026, 12, 1), date(2026, 12, 2)),  # 12:59
    ],
)
def test_the_job_reports_the_last_closed_day_or_locally_the_running_one(
    now, closed, running
) -> None:
    assert usage.report_day(now, NZ, 13, include_open=False) == closed
    assert usage.report_day(now, NZ, 13, include_open=True) == running


def test_a_days_events_are_looked_for_in_every_utc_date_partition_they_can_land_in() -> None:
    window = usage.window_for(date(2026, 7, 15), NZ, 13)  # 14 Jul 01:00 to 15 Jul 01:00 UTC
    assert usage.partitions(window, "events/") == [
        "events/2026/07/14/",
        "events/2026/07/15/",
    ]


def test_figures_count_each_event_once_and_only_inside_the_window() -> None:
    window = usage.window_for(date(2026, 12, 2), NZ, 13)
    inside = window.start + timedelta(hours=5)
    signed_up = event("account_created", inside)
    events = [
        signed_up,
        signed_up,  # Firehose delivered it twice
        event("account_created", window.start),  # the first instant belongs to the day
        event("account_created", window.end),  # the last does not
        event("account_created", window.start - timedelta(seconds=1)),
        event("enf_metric_received", inside, categories={"metric": "DAILY_ACTIVE_TRACE"}),
        event("enf_metric_received", inside, categories={"metric": "DAILY_ACTIVE_TRACE"}),
        event("enf_metric_received", inside, categories={"metric": "CONTACT_NOTIFICATION"}),
        event("keys_uploaded", inside, {"keys": 14}, {"platform": "ios"}),
        event("keys_uploaded", inside, {"keys": 3}, {"platform": "android"}),
        event("diary_shared", inside, {"entries": 40, "dropped": 2}),
        event("location_callback_requested", inside),
        event("enf_callback_requested", inside),
        event("exposure_event_received", inside, categories={"change": "new"}),
        event("exposure_event_received", inside, categories={"change": "repeat"}),
        event("details_export_written", inside, {"users": 7, "tombstones": 1, "messages": 2}),
    ]
    figures = usage.tally(events, window)
    row = usage.row(window, figures)
    assert (figures.duplicates, figures.outside) == (1, 2)
    assert row == {
        "Date": "2026-12-02",
        "App Registrations": "2",
        "Active Devices": "",
        "Bluetooth Active (24h)": "2",
        "Poster Scans": "",
        "Manual Entries": "",
        "Sign-ins": "0",
        "Bluetooth Registrations": "0",
        "Exposure Notifications": "1",
        "Upload Codes Issued": "0",
        "Key Uploads": "2",
        "Keys Uploaded": "17",
        "Location Alerts Published": "1",
        "Diaries Shared": "1",
        "Diary Entries Shared": "40",
        "Callbacks Requested": "2",
        "Contact Details Exported": "7",
    }


def test_the_columns_the_app_alone_could_supply_are_named_and_left_empty() -> None:
    assert usage.APP_ONLY == ("Active Devices", "Poster Scans", "Manual Entries")
    assert usage.HEADERS[:6] == (
        "Date",
        "App Registrations",
        "Active Devices",
        "Bluetooth Active (24h)",
        "Poster Scans",
        "Manual Entries",
    )


def test_a_day_reported_again_replaces_its_row_and_days_stay_in_date_order() -> None:
    rows = usage.parse_csv(
        usage.render_csv([{"Date": "2026-12-01", "App Registrations": "5"},
                          {"Date": "2026-12-03", "App Registrations": "9"}])
    )  # fmt: skip
    rows = usage.upsert(rows, {"Date": "2026-12-02", "App Registrations": "7"})
    rows = usage.upsert(rows, {"Date": "2026-12-01", "App Registrations": "6"})
    body = usage.render_csv(rows).decode()
    lines = body.splitlines()
    assert lines[0].startswith("Date,App Registrations,Active Devices,Bluetooth Active (24h)")
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["2026-12-01", "6"],
        ["2026-12-02", "7"],
        ["2026-12-03", "9"],
    ]


def settings(**overrides: object) -> UsageReportSettings:
    values: dict[str, object] = {
        "stage": "prod",
        "aws": AwsSettings(region="ap-southeast-2", ses_region="us-west-2", endpoint_url=None),
        "bucket": "analytics",
        "events_prefix": "events/",
        "reports_prefix": "reports/usage/",
        "timezone": NZ,
        "day_ends_at_hour": 13,
        "include_open_window": False,
        "log_level": "INFO",
    }
    values.update(overrides)
    return UsageReportSettings(**values)  # type: ignore[arg-type]


def test_the_job_reads_the_days_objects_and_writes_the_daily_and_all_days_files() -> None:
    bucket = MemoryAnalytics()
    window = usage.window_for(date(2026, 12, 2), NZ, 13)
    after = window.end + timedelta(minutes=4)
    records = [
        event("account_created", window.start + timedelta(hours=1)),
        event("account_created", window.end - timedelta(minutes=1)),
        event("account_created", window.end - timedelta(minutes=1), stage="staging"),
    ]
    bucket.store["events/2026/12/01/00/a"] = b"".join(r.record() for r in records[:1])
    bucket.store["events/2026/12/02/00/b"] = records[1].record() + b'{"app": "event"}\n'
    bucket.store["events/2026/12/02/00/c"] = records[2].record()
    # Not a partition of the day: never read (it would not count anyway).
    bucket.store["events/2026/11/30/23/old"] = event("account_created", after).record()
    deps = service.ReportDeps(bucket, bucket, settings())
    summary = service.publish_usage_report(deps, None, now=after + timedelta(minutes=20))
    assert summary["day"] == "2026-12-02"
    assert summary["row"]["App Registrations"] == "2"  # the staging event is not prod's
    assert summary["otherRecords"] == 1
    daily = bucket.store["reports/usage/daily/2026-12-02.csv"].decode().splitlines()
    assert daily[1].startswith("2026-12-02,2,,0,,,")
    all_days = bucket.store["reports/usage/nz-covid-tracer-app-usage.csv"].decode().splitlines()
    assert all_days == daily


def test_the_services_events_are_read_from_the_subscriptions_gzip_d_log_envelopes() -> None:
    """What the service-events stream writes: each record a gzip'd CloudWatch Logs envelope,
    one after another in the object (gzip members, read whole)."""
    bucket = MemoryAnalytics()
    window = usage.window_for(date(2026, 12, 2), NZ, 13)
    lines = [event("account_created", window.start + timedelta(hours=h)).record() for h in (1, 2)]

    def envelope(line: bytes) -> bytes:
        body = {
            "messageType": "DATA_MESSAGE",
            "logGroup": "/aws/lambda/f",
            "logStream": "s",
            "owner": "1",
            "subscriptionFilters": ["analytics-events"],
            "logEvents": [{"id": "1", "timestamp": 1, "message": line.decode().rstrip()}],
        }
        return gzip.compress(json.dumps(body).encode())  # fmt: skip

    bucket.store["events/2026/12/01/00/covidtracer-prod-service-events-1"] = b"".join(
        envelope(line) for line in lines
    )
    deps = service.ReportDeps(bucket, bucket, settings())
    summary = service.publish_usage_report(deps, date(2026, 12, 2), now=window.end)
    assert summary["row"]["App Registrations"] == "2"
    assert summary["otherRecords"] == 0
