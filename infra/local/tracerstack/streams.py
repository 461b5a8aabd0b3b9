"""The local stand-in for Lambda's DynamoDB stream event source mapping.

Reads a table's stream through the Streams API (moto supports DescribeStream,
GetShardIterator and GetRecords) and invokes a handler with Lambda-shaped events, as the
event source mapping does in AWS: records in order, a batch at a time; a batch whose
handler raises is delivered again on the next pump (at-least-once, in order), because the
checkpoint only moves past a batch the handler accepted.

``pump_once`` is the unit tests drive; ``python -m tracerstack.streams`` (started by
``make local``, in ``services/export``) pumps the ``PersonalDetails`` stream into the export
service's stream handler every second.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from collections.abc import Callable, MutableMapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any

# The export service's handler (services/export/app.py) and the variable naming its stream.
HANDLER = "queue_changed_personal_details"
STREAM_ARN_VARIABLE = "PERSONAL_DETAILS_STREAM_ARN"
POLL_SECONDS = 1.0
BATCH_SIZE = 500  # as the deployed mapping (app.py)

Handler = Callable[[dict[str, Any], Any], Any]


def lambda_record(raw: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A Streams API record in the shape Lambda delivers it (epoch-second creation time)."""
    dynamodb = dict(raw["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    return {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


def pump_once(
    streams: Any,
    stream_arn: str,
    handler: Handler,
    checkpoints: MutableMapping[str, str],
    *,
    region: str,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Deliver every record written since ``checkpoints`` to ``handler``; returns the count.

    ``streams`` is a boto3 ``dynamodbstreams`` client; ``checkpoints`` maps shard id → the
    last sequence number delivered (start empty: from the trim horizon) and is updated
    after each accepted batch. The handler's exception propagates; that batch is retried
    by the next call.
    """
    delivered = 0
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    for shard in shards:
        shard_id = shard["ShardId"]
        while True:
            if shard_id in checkpoints:
                iterator = streams.get_shard_iterator(
                    StreamArn=stream_arn,
                    ShardId=shard_id,
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    SequenceNumber=checkpoints[shard_id],
                )["ShardIterator"]
            else:
                iterator = streams.get_shard_iterator(
                    StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            records = streams.get_records(ShardIterator=iterator, Limit=batch_size)["Records"]
            if not records:
                break
            event = {"Records": [lambda_record(r, stream_arn, region) for r in records]}
            context = SimpleNamespace(
                aws_request_id=str(uuid.uuid4()),
                function_name=HANDLER,
                get_remaining_time_in_millis=lambda: 60_000,
            )
            handler(event, context)
            checkpoints[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
            delivered += len(records)
    return delivered


def main() -> None:
    """Inside ``services/export``: pump the stream into the app's handler until stopped."""
    import boto3

    stream_arn = os.environ[STREAM_ARN_VARIABLE]
    region = os.environ.get("AWS_REGION", "ap-southeast-2")
    sys.path.insert(0, os.getcwd())
    handler = getattr(importlib.import_module("app"), HANDLER)
    streams = boto3.client(
        "dynamodbstreams", region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL"]
    )
    checkpoints: dict[str, str] = {}
    print(f"pumping {stream_arn} into app.{HANDLER}", flush=True)
    while True:
        try:
            count = pump_once(streams, stream_arn, handler, checkpoints, region=region)
            if count:
                print(f"delivered {count} stream records", flush=True)
        except Exception as exc:  # keep pumping, like the mapping's retries
            print(f"stream batch failed ({type(exc).__name__}); retrying", flush=True)
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    main()
