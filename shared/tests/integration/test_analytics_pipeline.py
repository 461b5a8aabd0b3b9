"""The analytics path over HTTP, as AWS carries it: the emitter's log lines → the function's
log group (moto's CloudWatch Logs) → its subscription filter → the service-events Firehose
stream → the analytics bucket → the usage report."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from covidtracer.analytics import emitter, model
from covidtracer.analytics.settings import analytics_settings
from covidtracer.usagereport import model as usage
from covidtracer.usagereport import service, wiring
from covidtracer.usagereport.repository import S3Analytics
from tracerstack import cloudwatch
from tracerstack.bootstrap import Bootstrap


class FunctionLog:
    """One function's log: what its emitter writes goes to its log group, as Lambda sends a
    function's stdout there."""

    def __init__(self, stack: Bootstrap) -> None:
        logs = stack.client("logs")
        self.group = cloudwatch.log_group("enf", stack.stage, uuid.uuid4().hex[:8])
        cloudwatch.subscribe(logs, self.group, stack.outputs)
        self.shipper = cloudwatch.Shipper(logs, self.group)
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def ship(self) -> None:
        self.shipper.ship(self.lines)
        self.lines = []


@pytest.fixture
def function_log(service_env: dict[str, str], aws_stack: Bootstrap) -> Iterator[FunctionLog]:
    log = FunctionLog(aws_stack)
    emitter.use(emitter.Emitter(analytics_settings(), log))
    yield log
    emitter.use(None)


def bucket_records(stack: Bootstrap, prefix: str = "events/") -> list[Any]:
    s3 = stack.client("s3")
    bucket = stack.outputs["AnalyticsBucket"]
    records: list[Any] = []
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        records.extend(model.records(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body))
    return records


def test_emitted_events_land_in_the_bucket_under_the_days_utc_partition_and_nothing_else(
    function_log: FunctionLog, aws_stack: Bootstrap, service_env: dict[str, str]
) -> None:
    before = {json.dumps(r, sort_keys=True) for r in bucket_records(aws_stack)}
    emitter.emit("keys_uploaded", counts={"keys": 14}, categories={"platform": "android"})
    emitter.emit("account_created")
    # The function's other lines share its log group; the subscription passes on events only.
    function_log("START RequestId: 6f1c Version: 3\n")
    function_log(json.dumps({"level": "INFO", "message": "request", "status": 204}) + "\n")
    function_log.ship()
    today = datetime.now(UTC).strftime("%Y/%m/%d")
    new = [
        r
        for r in bucket_records(aws_stack, f"events/{today}/")
        if json.dumps(r, sort_keys=True) not in before
    ]
    assert sorted(r["name"] for r in new) == ["account_created", "keys_uploaded"]
    assert all(model.parse_event(r) is not None for r in new)
    assert {r["stage"] for r in new} == {service_env["STAGE"]}


def test_the_service_events_objects_hold_what_cloudwatch_logs_delivers(
    function_log: FunctionLog, aws_stack: Bootstrap
) -> None:
    """The object is the subscription's gzip'd envelope (as in AWS, where the stream stores
    records uncompressed as they come), the event line in its logEvents."""
    s3 = aws_stack.client("s3")
    bucket = aws_stack.outputs["AnalyticsBucket"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    emitter.emit("sign_in_failed")
    function_log.ship()
    [new] = [
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"] not in keys
    ]
    envelope = json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=new)["Body"].read()))
    assert envelope["messageType"] == "DATA_MESSAGE"
    assert envelope["logGroup"] == function_log.group
    assert envelope["subscriptionFilters"] == [cloudwatch.SUBSCRIPTION]
    [line] = [json.loads(e["message"]) for e in envelope["logEvents"]]
    assert line["name"] == "sign_in_failed"


def test_the_report_reads_the_bucket_firehose_wrote(
    function_log: FunctionLog, aws_stack: Bootstrap
) -> None:
    deps = wiring.report_deps()
    config = deps.config
    now = datetime.now(UTC)
    day = usage.report_day(now, config.timezone, config.day_ends_at_hour, include_open=True)
    before = service.publish_usage_report(deps, day, now)["row"]
    for _ in range(3):
        emitter.emit("enf_metric_received", categories={"metric": "DAILY_ACTIVE_TRACE"})
    emitter.emit("upload_code_issued", categories={"report_type": "confirmed"})
    function_log.ship()
    after = service.publish_usage_report(deps, day, now)["row"]
    assert int(after["Bluetooth Active (24h)"]) - int(before["Bluetooth Active (24h)"]) == 3
    assert int(after["Upload Codes Issued"]) - int(before["Upload Codes Issued"]) == 1
    stored = S3Analytics(config.bucket).read(service.all_days_key(config))
    assert stored is not None
    assert usage.parse_csv(stored)[-1] == after
