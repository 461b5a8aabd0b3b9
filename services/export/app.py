"""NCTS personal-details export (DESIGN §3): stream handler and scheduled consumer."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import Any

from chalice import Chalice, Rate  # type: ignore[attr-defined]

from covidtracer import logs, snapstart

logs.configure()
app = Chalice(app_name="covidtracer-export")
app.debug = False
# SnapStart's init: what the first invocation would otherwise pay (covidtracer.snapstart).
snapstart.prepare(
    "covidtracer.nctsexport.wiring:export_deps",
    imports=("pynamodb.models", "covidtracer.nctsexport.stream", "covidtracer.usagereport.wiring"),
    clients=("dynamodb", "sqs", "s3"),
)

# Chalice makes the event source mapping from this value when `chalice deploy` imports the
# app, so it is read from the environment here (the deploy passes the stage's settings);
# ExportSettings validates the same variable at cold start.
PERSONAL_DETAILS_STREAM_ARN = os.environ.get("PERSONAL_DETAILS_STREAM_ARN", "")


def _now() -> datetime:
    return datetime.now(UTC)


def _bind(event: Any) -> None:
    logs.clear()
    context = getattr(event, "context", None)
    logs.bind(request_id=getattr(context, "aws_request_id", None))


# The deployed mapping also bisects a failing batch, bounds its retries and record age, parks
# what it gives up in an SQS queue, and reads this handler's partial batch response
# (tracerstack.package; docs/operations.md §5).
@app.on_dynamodb_record(
    stream_arn=PERSONAL_DETAILS_STREAM_ARN,
    batch_size=500,
    starting_position="TRIM_HORIZON",
    maximum_batching_window_in_seconds=5,
)
def queue_changed_personal_details(event: Any) -> dict[str, list[dict[str, str]]]:
    from covidtracer.nctsexport import service, stream, wiring

    _bind(event)
    batch = stream.batch(event.to_dict())
    service.publish_changes(wiring.export_deps(), batch.records, _now())
    return batch.response()


@app.schedule(Rate(5, unit=Rate.MINUTES))
def export_personal_details(event: Any) -> dict[str, object]:
    from covidtracer.nctsexport import service, wiring

    _bind(event)
    return service.export_personal_details(wiring.export_deps(), _now()).summary()


@app.lambda_function(name="usage_report")
def usage_report(event: Any, context: Any) -> dict[str, object]:
    """Daily (EventBridge Scheduler, 13:20 New Zealand time; analytics.yaml): the day's
    analytics events become the usage CSV in the analytics bucket. An event
    ``{"date": "YYYY-MM-DD"}`` re-reports that day."""
    from covidtracer.usagereport import service, wiring

    logs.clear()
    logs.bind(request_id=getattr(context, "aws_request_id", None))
    day = event.get("date") if isinstance(event, dict) else None
    return service.publish_usage_report(
        wiring.report_deps(), date.fromisoformat(day) if isinstance(day, str) else None, _now()
    )
