"""The app's stream handler and scheduled job, driven as Lambda drives them (moto over HTTP)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from export_rig import Rig, export_line, item

from tracerstack.bootstrap import Bootstrap
from tracerstack.jobs import JOBS, scheduled_event
from tracerstack.streams import HANDLER, pump_once

CONTEXT = SimpleNamespace(aws_request_id="req-1", function_name="f")


def test_a_written_item_reaches_the_export_file_through_the_apps_handlers(
    service_env: dict[str, str], aws_stack: Bootstrap
) -> None:
    import app

    Rig(aws_stack).put(item("app-user", updatedAt="2021-10-04T21:05:12.345Z"))
    checkpoints: dict[str, str] = {}
    delivered = pump_once(
        aws_stack.client("dynamodbstreams"),
        service_env["PERSONAL_DETAILS_STREAM_ARN"],
        getattr(app, HANDLER),
        checkpoints,
        region=aws_stack.region,
    )
    assert delivered == 1

    job = JOBS["details-export"]
    summary: dict[str, Any] = getattr(app, job.function)(scheduled_event(job), CONTEXT)

    assert summary["users"] == 1 and summary["messages"] == 1
    body = (
        aws_stack.client("s3")
        .get_object(Bucket=service_env["USER_DETAILS_BUCKET"], Key=summary["key"])["Body"]
        .read()
    )
    assert json.loads(body) == export_line("app-user", "2021-10-04T21:05:12.345Z")
    assert summary["key"].startswith("personal-details/")


def test_the_app_registers_the_stream_and_a_five_minute_schedule(
    service_env: dict[str, str],
) -> None:
    import app

    handlers = {h.name: h for h in app.app.event_sources}  # type: ignore[attr-defined]
    assert set(handlers) == {HANDLER, "export_personal_details"}
    assert handlers[HANDLER].batch_size == 500
    assert handlers["export_personal_details"].schedule_expression.to_string() == "rate(5 minutes)"


def _stream_record(user_id: str, sequence: str, event_name: str = "INSERT") -> dict[str, Any]:
    return {
        "eventID": f"event-{sequence}",
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"userId": {"S": user_id}},
            "ApproximateCreationDateTime": 1633381512.0,
            "SequenceNumber": sequence,
        },
    }


def test_a_malformed_record_is_reported_so_lambda_retries_from_it_after_queueing_those_before(
    service_env: dict[str, str], aws_stack: Bootstrap
) -> None:
    """The mapping reports batch item failures (ReportBatchItemFailures): Lambda checkpoints
    before the reported record and retries from it, then parks it (on-failure destination)
    once its retries are spent, so one bad record neither blocks the shard nor loses the
    changes before it. https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
    """
    import app

    event = {
        "Records": [
            _stream_record("before-the-bad-one", "100"),
            _stream_record("bad", "200", event_name="UPDATE"),  # not a DynamoDB event name
            _stream_record("after-the-bad-one", "300"),
        ]
    }
    response = getattr(app, HANDLER)(event, CONTEXT)
    assert response == {"batchItemFailures": [{"itemIdentifier": "200"}]}

    sqs = aws_stack.client("sqs")
    queued = sqs.receive_message(
        QueueUrl=service_env["PERSONAL_DATA_UPDATES_QUEUE_URL"], MaxNumberOfMessages=10
    ).get("Messages", [])
    bodies = "".join(message["Body"] for message in queued)
    assert "before-the-bad-one" in bodies
    assert "after-the-bad-one" not in bodies and '"bad"' not in bodies
    assert getattr(app, HANDLER)({"Records": [_stream_record("fine", "400")]}, CONTEXT) == {
        "batchItemFailures": []
    }
