"""Exposure events of interest (DESIGN §2.4, §2.5): events from NCTS (behind its API key),
callback requests from phones, and the 2-hourly feed job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalice.app import Blueprint, Rate, Response

from covidtracer import logs
from covidtracer.exposures import service, wiring
from covidtracer.http import json_body, json_response, no_content, source_ip

bp = Blueprint(__name__)
log = logs.get_logger(__name__)
EVENTS = "/ncts/exposure-events"


@bp.route("/v2/exposure-event-matches", methods=["POST"])
def post_exposure_event_match() -> Response:
    request = bp.current_request
    match = service.MatchRequest(json_body(request), source_ip(request))
    service.request_callback(wiring.dependencies(), match, datetime.now(UTC))
    return no_content()


@bp.route(EVENTS, methods=["POST"])
def post_exposure_event() -> Response:
    deps = _ncts_caller()
    body = json_body(bp.current_request)
    created, item = service.receive_exposure_event(deps, body, datetime.now(UTC))
    return json_response(item, 201 if created else 200)


@bp.route(EVENTS + "/{notificationId}", methods=["DELETE"])
def delete_exposure_event(notificationId: str) -> Response:  # noqa: N803 - the path's name
    service.withdraw_exposure_event(_ncts_caller(), notificationId, datetime.now(UTC))
    return no_content()


@bp.schedule(Rate(2, unit=Rate.HOURS), name="publish_exposure_events_feed")
def publish_exposure_events_feed(event: Any) -> dict[str, int]:
    job = service.FeedJob()
    summary = service.publish_exposure_events_feed(wiring.dependencies(), job, datetime.now(UTC))
    log.info("exposure events feed published", extra=summary)
    return summary


def _ncts_caller() -> service.Dependencies:
    """The dependencies, once the caller has shown NCTS's key (before its body is read)."""
    deps = wiring.dependencies()
    service.require_ncts_key(deps, bp.current_request.headers.get("x-api-key"))
    return deps
