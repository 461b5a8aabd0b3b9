"""The app API (DESIGN §2): a routing table; each route decodes, calls one service, encodes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalice import Rate, Response  # type: ignore[attr-defined]

from covidtracer import aws, health, logs
from covidtracer.details import service
from covidtracer.http import (
    ApiApp,
    bearer_token,
    json_body,
    json_response,
    no_content,
    source_ip,
)
from covidtracer.settings import details_settings

logs.configure()
app = ApiApp("covidtracer-details")
log = logs.get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@app.route("/health", methods=["GET"])
def get_health() -> Response:
    settings = details_settings()
    healthy, report = health.run(
        {
            **health.table_checks(settings.tables),
            **health.bucket_check("feed", settings.feed_bucket),
        }
    )
    return json_response(report, 200 if healthy else 503)


@app.route("/user/auth/initiate", methods=["POST"])
def initiate_sign_in() -> Response:
    from covidtracer.signin import service, wiring

    request = app.current_request
    body = json_body(request)
    initiated = service.initiate(wiring.sign_in_deps(), body, _now(), source_ip=source_ip(request))
    return json_response(initiated.body())


@app.route("/user/auth/confirm", methods=["POST"])
def confirm_sign_in() -> Response:
    from covidtracer.signin import service, wiring

    confirmed = service.confirm(wiring.sign_in_deps(), json_body(app.current_request), _now())
    return json_response(confirmed.body())


@app.route("/user/details", methods=["GET"])
def get_details() -> Response:
    user_id, deps = _caller()
    return json_response(service.get_contact_details(user_id, deps=deps))


@app.route("/user/details", methods=["PUT"])
def put_details() -> Response:
    user_id, deps = _caller()
    body = json_body(app.current_request)
    return json_response(service.replace_contact_details(user_id, body, deps=deps, now=_now()))


@app.route("/user/details", methods=["PATCH"])
def patch_details() -> Response:
    user_id, deps = _caller()
    body = json_body(app.current_request)
    return json_response(service.update_contact_details(user_id, body, deps=deps, now=_now()))


@app.route("/user/details", methods=["DELETE"])
def delete_details() -> Response:
    user_id, deps = _caller()
    service.delete_contact_details(user_id, deps=deps)
    return no_content()


@app.route("/v2/user/location-history", methods=["POST"])
def post_location_history() -> Response:
    settings = details_settings()
    service.upload_diary(
        json_body(app.current_request, max_bytes=settings.diary.max_body_bytes),
        source_ip=source_ip(app.current_request),
        deps=service.dependencies(settings),
        settings=settings,
        now=_now(),
    )
    return no_content()


@app.route("/v2/exposure-event-matches", methods=["POST"])
def post_exposure_event_match() -> Response:
    settings = details_settings()
    service.request_callback(
        json_body(app.current_request),
        source_ip=source_ip(app.current_request),
        deps=service.dependencies(settings),
        settings=settings,
        now=_now(),
    )
    return no_content()


@app.route("/ncts/exposure-events", methods=["POST"])
def post_exposure_event() -> Response:
    settings = details_settings()
    _require_ncts_key(settings.ncts_api_key_secret_id)
    created, item = service.receive_exposure_event(
        json_body(app.current_request),
        deps=service.dependencies(settings),
        settings=settings,
        now=_now(),
    )
    return json_response(item, 201 if created else 200)


@app.route("/ncts/exposure-events/{notificationId}", methods=["DELETE"])
def delete_exposure_event(notificationId: str) -> Response:  # noqa: N803 - the path's name
    settings = details_settings()
    _require_ncts_key(settings.ncts_api_key_secret_id)
    service.withdraw_exposure_event(
        notificationId, deps=service.dependencies(settings), settings=settings, now=_now()
    )
    return no_content()


@app.schedule(Rate(2, unit=Rate.HOURS), name="publish_exposure_events_feed")
def publish_exposure_events_feed(event: Any) -> dict[str, int]:
    settings = details_settings()
    summary = service.publish_exposure_events_feed(
        deps=service.dependencies(settings), settings=settings, now=_now()
    )
    log.info("exposure events feed published", extra=summary)
    return summary


def _require_ncts_key(secret_id: str) -> None:
    headers = app.current_request.headers
    service.check_ncts_api_key(headers.get("x-api-key"), lambda: aws.secret_string(secret_id))


def _caller() -> tuple[str, service.ContactDependencies]:
    """The signed-in caller (from the verified token only) and the contact-details stores."""
    user_id = _authenticated_user_id()
    return user_id, service.contact_dependencies(details_settings())


def _authenticated_user_id() -> str:
    """The caller's userId from their bearer access token (DESIGN §2.2): verified here when
    ``VERIFY_TOKENS_IN_APP`` is on, else taken from API Gateway's Cognito authorizer.
    Raises Unauthorized (401) for a missing, forged, expired or foreign token."""
    from covidtracer.signin import tokens

    request = app.current_request
    return tokens.authenticated_user_id(bearer_token(request), request.context or {})
