"""The analytics path over HTTP: the emitter → moto's Firehose → the analytics bucket → the
usage report; and what happens to requests when Firehose is unreachable."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from covidtracer import aws, settings
from covidtracer.analytics import emitter, model
from covidtracer.analytics.repository import FirehoseTransport, MemoryTransport
from covidtracer.analytics.settings import analytics_settings
from covidtracer.usagereport import model as usage
from covidtracer.usagereport import service, wiring
from covidtracer.usagereport.repository import S3Analytics
from tracerstack.bootstrap import Bootstrap
from tracerstack.pytest_plugin import UnresponsiveServer, free_port


@pytest.fixture
def analytics_env(service_env: dict[str, str]) -> Iterator[dict[str, str]]:
    emitter.use(None)
    yield service_env
    emitter.flush(5)
    emitter.use(None)


def bucket_records(stack: Bootstrap, prefix: str = "events/") -> list[dict[str, object]]:
    s3 = stack.client("s3")
    bucket = stack.outputs["AnalyticsBucket"]
    records: list[dict[str, object]] = []
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        records.extend(model.json_values(body))
    return records


def test_emitted_events_land_in_the_bucket_under_the_days_utc_partition(
    analytics_env: dict[str, str], aws_stack: Bootstrap
) -> None:
    before = {r["id"] for r in bucket_records(aws_stack)}  # type: ignore[index]
    emitter.emit("keys_uploaded", counts={"keys": 14}, categories={"platform": "android"})
    emitter.emit("account_created")
    assert emitter.flush(10)
    assert emitter.current().stats()["sent"] == 2
    today = datetime.now(UTC).strftime("%Y/%m/%d")
    new = [r for r in bucket_records(aws_stack, f"events/{today}/") if r["id"] not in before]
    assert sorted(r["name"] for r in new) == ["account_created", "keys_uploaded"]  # type: ignore[type-var]
    assert all(model.parse_event(r) is not None for r in new)
    assert {r["stage"] for r in new} == {analytics_env["STAGE"]}


@pytest.mark.parametrize("transport", ["memory", "firehose"])
def test_the_transport_contract_every_record_of_a_batch_is_accepted_once(
    transport: str, analytics_env: dict[str, str], aws_stack: Bootstrap
) -> None:
    stream = analytics_env["ANALYTICS_STREAM_NAME"]
    records = [
        model.make_event(
            "account_created", {}, {}, stage="local", version="v1",
            now=datetime.now(UTC), new_id=f"{n:032x}",
        ).record()
        for n in range(3)
    ]  # fmt: skip
    memory = MemoryTransport()
    put = memory if transport == "memory" else FirehoseTransport()
    assert put.put(stream, records) == [True, True, True]
    if transport == "memory":
        landed = [json.loads(r) for r in memory.records]
    else:
        landed = [r for r in bucket_records(aws_stack) if str(r["id"]).startswith("0" * 31)]
    assert sorted(str(r["id"]) for r in landed) == [f"{n:032x}" for n in range(3)]


def test_with_firehose_unreachable_emits_return_at_once_and_drops_are_counted(
    analytics_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only Firehose moves to a port nobody listens on; every other client stays on moto.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    settings.reset()
    aws.reset()
    started = time.perf_counter()
    for _ in range(50):
        emitter.emit("sign_in_succeeded")
    assert time.perf_counter() - started < 0.5
    assert emitter.flush(20)
    stats = emitter.current().stats()
    assert stats["sent"] == 0
    assert stats["dropped:undeliverable"] == 50
    assert stats["emitted"] == 50


@pytest.fixture
def hanging_firehose(
    analytics_env: dict[str, str], unresponsive_server: UnresponsiveServer
) -> UnresponsiveServer:
    """The process's emitter, talking to a Firehose endpoint that never answers."""
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "firehose",
        region_name="ap-southeast-2",
        endpoint_url=unresponsive_server.url,
        config=Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1}),
    )
    emitter.use(emitter.Emitter(analytics_settings(), lambda: FirehoseTransport(client)))
    return unresponsive_server


def test_a_hanging_firehose_holds_the_sender_never_the_emitting_code(
    analytics_env: dict[str, str], hanging_firehose: UnresponsiveServer
) -> None:
    emitter.emit("account_created")
    assert hanging_firehose.accepted.wait(5)  # the sender is now stuck inside PutRecordBatch
    started = time.perf_counter()
    for _ in range(100):
        emitter.emit("account_created")
    assert time.perf_counter() - started < 0.5
    assert emitter.flush(0.1) is False  # a job's end-of-invocation wait is bounded
    assert emitter.flush(30)  # 3 attempts × 1 s read timeout, then everything is dropped
    stats = emitter.current().stats()
    assert stats["sent"] == 0 and stats["dropped:undeliverable"] == 101


def test_the_report_reads_the_bucket_firehose_wrote(
    analytics_env: dict[str, str], aws_stack: Bootstrap
) -> None:
    deps = wiring.report_deps()
    config = deps.config
    now = datetime.now(UTC)
    day = usage.report_day(now, config.timezone, config.day_ends_at_hour, include_open=True)
    before = service.publish_usage_report(deps, day, now)["row"]
    for _ in range(3):
        emitter.emit("enf_metric_received", categories={"metric": "DAILY_ACTIVE_TRACE"})
    emitter.emit("upload_code_issued", categories={"report_type": "confirmed"})
    assert emitter.flush(10)
    after = service.publish_usage_report(deps, day, now)["row"]
    assert int(after["Bluetooth Active (24h)"]) - int(before["Bluetooth Active (24h)"]) == 3
    assert int(after["Upload Codes Issued"]) - int(before["Upload Codes Issued"]) == 1
    stored = S3Analytics(config.bucket).read(service.all_days_key(config))
    assert stored is not None
    assert usage.parse_csv(stored)[-1] == after
