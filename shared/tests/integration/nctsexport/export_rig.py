"""A test rig around one fresh stack: the details table, its stream, the queue, the bucket."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from covidtracer.nctsexport import service, stream
from covidtracer.nctsexport.repository import (
    DetailsTable,
    ExportBucket,
    ExportStateObject,
    UpdatesQueue,
)
from covidtracer.nctsexport.service import ExportDeps, ExportLimits, ExportResult
from covidtracer.personaldetails.model import iso_millis
from tracerstack.bootstrap import Bootstrap
from tracerstack.streams import pump_once

FAST = ExportLimits(wait_seconds=0)


def item(user_id: str, **fields: Any) -> dict[str, Any]:
    """A PersonalDetails item as the contract in ``personaldetails.model`` defines it."""
    base: dict[str, Any] = {
        "userId": user_id,
        "email": f"{user_id}@example.nz",
        "firstName": "Aroha",
        "lastName": "Smith",
        "phone": "+64210123456",
        "updatedAt": iso_millis(datetime.now(UTC)),
    }
    base.update(fields)
    return base


def export_line(user_id: str, updated_at: str, **fields: Any) -> dict[str, Any]:
    """The export file's line for ``item(user_id, updatedAt=updated_at, **fields)``."""
    line = {
        "userId": user_id,
        "email": f"{user_id}@example.nz",
        "firstName": "Aroha",
        "middleName": None,
        "lastName": "Smith",
        "phone": "+64210123456",
        "dateOfBirth": None,
        "gender": None,
        "ethnicity": None,
        "updatedAt": updated_at,
        "deleted": False,
    }
    line.update(fields)
    return line


class Rig:
    def __init__(self, boot: Bootstrap) -> None:
        out = boot.outputs
        self.region = boot.region
        self.ddb = boot.client("dynamodb")
        self.sqs = boot.client("sqs")
        self.s3 = boot.client("s3")
        self.streams = boot.client("dynamodbstreams")
        self.table_name = out["PersonalDetailsTable"]
        self.stream_arn = out["PersonalDetailsStreamArn"]
        self.queue_url = out["PersonalDataUpdatesQueueUrl"]
        self.dlq_url = out["PersonalDataUpdatesDeadLetterQueueUrl"]
        self.bucket_name = out["UserDetailsBucket"]
        self.kms_key = out["DataKeyArn"]
        self.queue = UpdatesQueue(self.sqs, self.queue_url)
        self.table = DetailsTable(self.ddb, self.table_name)
        self.bucket = ExportBucket(self.s3, self.bucket_name, self.kms_key)
        self.state = ExportStateObject(self.s3, self.bucket_name)
        self.checkpoints: dict[str, str] = {}

    def put(self, record: Mapping[str, Any]) -> None:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        self.ddb.put_item(
            TableName=self.table_name,
            Item={name: serializer.serialize(value) for name, value in record.items()},
        )

    def delete(self, user_id: str) -> None:
        self.ddb.delete_item(TableName=self.table_name, Key={"userId": {"S": user_id}})

    def pump(self, handler: Any = None) -> int:
        """Stream → handler (by default the service's publish use case) → queue."""

        def publish(event: dict[str, Any], _context: Any) -> None:
            deps = ExportDeps(self.queue, self.table, self.bucket)
            service.publish_changes(deps, stream.records(event), datetime.now(UTC))

        return pump_once(
            self.streams, self.stream_arn, handler or publish, self.checkpoints, region=self.region
        )

    def export(
        self, now: datetime, limits: ExportLimits = FAST, queue: Any = None, table: Any = None
    ) -> ExportResult:
        deps = ExportDeps(queue or self.queue, table or self.table, self.bucket, self.state, limits)
        return service.export_personal_details(deps, now)

    def keys(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket_name, Prefix="personal-details/")
        listed = listed.get("Contents", [])
        return sorted(o["Key"] for o in listed)

    def lines(self, key: str) -> list[dict[str, Any]]:
        body = self.s3.get_object(Bucket=self.bucket_name, Key=key)["Body"].read()
        assert body.endswith(b"\n")
        return [json.loads(line) for line in body.decode().splitlines()]

    def queued(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )
