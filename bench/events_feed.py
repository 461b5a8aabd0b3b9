"""Exposure-events feed: build and write current-exposure-events.json for 10,000 active
events stored in DynamoDB (moto server over HTTP). Target (DESIGN §7): ≤ 1 s.

Two paths are timed (3 runs each, median):
- an inbound change (NCTS withdraws an event; a new or changed event takes the same feed
  path): the stored feed is read, edited and written back, no table scan. This is the
  target: NCTS waits for it, behind API Gateway's 29 s limit.
- the 2-hourly rebuild from a full table scan, which moto serves at ~1-2 ms per item
  (its response serializer walks botocore's shape for every attribute value).

    .venv/bin/python bench/events_feed.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TARGET_SECONDS = 1.0
EVENTS = 10_000
RUNS = 3


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra" / "local"))
    from moto.server import ThreadedMotoServer

    from tracerstack.bootstrap import bootstrap
    from tracerstack.environment import service_environment
    from tracerstack.pytest_plugin import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        boot = bootstrap(f"http://127.0.0.1:{port}", "bench")
        os.environ.update(
            service_environment(
                boot, partners_url="http://127.0.0.1:9", database_url="postgresql://unused/x"
            )
        )
        from covidtracer.details import model, service
        from covidtracer.settings import details_settings

        settings = details_settings()
        deps = service.dependencies(settings)
        now = datetime.now(UTC)
        ddb = boot.client("dynamodb")
        table = boot.outputs["ExposureEventsTable"]
        for start in range(0, EVENTS, 25):
            requests = []
            for n in range(start, start + 25):
                begins = now - timedelta(days=n % 13, minutes=n % 600)
                event = model.parse_exposure_event(
                    {
                        "eventId": f"a0l4a{n:013d}",
                        "notificationId": f"a1k4a{n:013d}",
                        "gln": f"{9429300000000 + n}",
                        "start": begins.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "end": (begins + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "systemNotificationBody": "You were at a location of interest.",
                        "appBannerTitle": "Location of interest",
                        "appBannerBody": "Isolate, test, and call Healthline on 0800 358 5453.",
                        "appBannerLinkLabel": "More information",
                        "appBannerLinkUrl": "https://covid19.govt.nz/locations",
                        "appBannerRequestCallbackEnabled": n % 2 == 0,
                    }
                )
                item = {k: {"S": v} for k, v in event.feed_item().items()}
                item["appBannerRequestCallbackEnabled"] = {"BOOL": event.request_callback_enabled}
                item.update(
                    pushPending={"BOOL": False},
                    version={"S": "v1"},
                    expiresAt={"N": str(model.expires_at(event, 14))},
                )
                requests.append({"PutRequest": {"Item": item}})
            ddb.batch_write_item(RequestItems={table: requests})

        if os.environ.get("BENCH_PROFILE"):
            t = time.perf_counter()
            pages = ddb.get_paginator("scan").paginate(TableName=table)
            count = sum(len(page["Items"]) for page in pages)
            print(f"raw boto3 scan: {count} items in {time.perf_counter() - t:.3f} s")
            t = time.perf_counter()
            stored = list(deps.events.scan())
            print(f"pynamodb scan: {len(stored)} items in {time.perf_counter() - t:.3f} s")
            t = time.perf_counter()
            items = model.active_items((s.event for s in stored), now, 14)
            deps.feed.write("bench.json", model.feed_document(items), 300, replaces=None)
            print(f"build + gzip + S3 write without the scan: {time.perf_counter() - t:.3f} s")
            return
        rebuilds = []
        for _ in range(RUNS):
            started = time.perf_counter()
            summary = service.publish_exposure_events_feed(
                deps=deps, settings=settings, now=now, retry_pushes=False
            )
            rebuilds.append(time.perf_counter() - started)
            assert summary["items"] == EVENTS, summary
        changes = []
        for n in range(RUNS):
            started = time.perf_counter()
            service.withdraw_exposure_event(f"a1k4a{n:013d}", deps=deps, settings=settings, now=now)
            changes.append(time.perf_counter() - started)
        feed = deps.feed.read(settings.events.feed_object_key)
        assert feed is not None and len(model.feed_items(feed[0])) == EVENTS - RUNS
        _report("inbound change (delete + feed rewrite)", changes)
        _report("full rebuild from a table scan (2-hourly job)", rebuilds)
    finally:
        server.stop()


def _report(what: str, timings: list[float]) -> None:
    median = statistics.median(timings)
    runs = ", ".join(f"{t:.3f}" for t in timings)
    verdict = "met" if median <= TARGET_SECONDS else "MISSED"
    print(f"events feed, {EVENTS} active events, {what}: median {median:.3f} s of {RUNS} runs")
    print(f"  ({runs}); target ≤ {TARGET_SECONDS:.1f} s: {verdict}")


if __name__ == "__main__":
    main()
