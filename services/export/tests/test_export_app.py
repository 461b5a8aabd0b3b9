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
