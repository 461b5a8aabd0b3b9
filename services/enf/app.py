"""The Exposure Notification key server API (DESIGN §4): a routing table.

Each handler decodes its request into an ``ApiRequest``, calls one use case of
``covidtracer.enfkeys.service`` (or, for the export job, ``covidtracer.enffiles.service``)
with the stage's adapters (``wiring.deps()``, built on first use) and encodes the answer.
"""

# No `from __future__ import annotations` here: Chalice's IAM policy analyzer reads this
# module's symbol tables and fails on postponed annotations (`make package` exercises it).

from datetime import UTC, datetime
from typing import Any

from chalice import Rate, Response  # type: ignore[attr-defined]
from chalice.app import Request

from covidtracer import health, logs
from covidtracer.enffiles import service as files
from covidtracer.enffiles import wiring as files_wiring
from covidtracer.enfkeys import schema, service, wiring
from covidtracer.enfkeys.model import ApiRequest
from covidtracer.enfkeys.settings import enf_settings
from covidtracer.http import ApiApp, bearer_token, json_body, json_response, no_content, source_ip

logs.configure()
app = ApiApp("covidtracer-enf")


def _now() -> datetime:
    return datetime.now(UTC)


def _current() -> Request:
    request = app.current_request
    assert request is not None, "a route runs only with a current request"
    return request


def _request(*, body: bool = False) -> ApiRequest:
    """The current HTTP request as the use cases read it (its JSON body when ``body``)."""
    request = _current()
    return ApiRequest(
        body=json_body(request) if body else {},
        bearer=bearer_token(request),
        query=request.query_params or {},
        source_ip=source_ip(request),
        api_key=request.headers.get("x-api-key"),
    )


@app.route("/health", methods=["GET"])
def get_health() -> Response:
    healthy, report = health.run(wiring.health_checks(enf_settings()))
    return json_response(report, 200 if healthy else 503)


@app.route("/register", methods=["POST"])
def post_register() -> Response:
    nonce = service.start_registration(wiring.deps(), _request(), _now())
    return json_response({"nonce": nonce})


@app.route("/register", methods=["PUT"])
def put_register() -> Response:
    return json_response(service.complete_registration(wiring.deps(), _request(body=True), _now()))


@app.route("/register", methods=["DELETE"])
def delete_register() -> Response:
    service.forget(wiring.deps(), _request(), _now())
    return no_content()


@app.route("/refresh", methods=["POST"])
def post_refresh() -> Response:
    token = service.refresh(wiring.deps(), _request(), _now())
    return json_response({"token": token})


@app.route("/ncts/verification-codes", methods=["POST"])
def post_verification_code() -> Response:
    expires_at = service.request_code(wiring.deps(), _request(body=True), _now())
    return json_response(
        {"expiresAt": expires_at.isoformat(timespec="seconds").replace("+00:00", "Z")}, 201
    )


@app.route("/exposures/verify", methods=["POST"])
def post_exposures_verify() -> Response:
    token = service.verify_code(wiring.deps(), _request(body=True), _now())
    return json_response({"token": str(token)})


@app.route("/exposures", methods=["POST"])
def post_exposures() -> Response:
    service.upload_keys(wiring.deps(), _request(body=True), _now())
    return no_content()


@app.route("/exposures", methods=["GET"])
def get_exposures() -> Response:
    return json_response(service.list_files(wiring.deps(), _request(), _now()))


@app.route("/data/{folder}/{name}", methods=["GET"])
def get_export_file(folder: str, name: str) -> Response:
    # Export paths are always exposures/<file>.zip: two segments (chalice local has no
    # greedy {path+} parameters, and nothing else in the bucket may be served).
    request = ApiRequest(bearer=bearer_token(_current()), path=f"{folder}/{name}")
    body = service.read_file(wiring.deps(), request, _now())
    return Response(
        body=body,
        status_code=200,
        headers={"Content-Type": "application/zip", "Cache-Control": "no-store"},
    )


@app.route("/settings/exposures", methods=["GET"])
def get_exposure_settings() -> Response:
    return json_response(service.exposure_config(wiring.deps(), _request(), _now()))


@app.route("/settings/notification", methods=["GET"])
def get_notification_settings() -> Response:
    return json_response(service.notification_config(wiring.deps(), _request(), _now()))


@app.route("/metrics", methods=["POST"])
def post_metrics() -> Response:
    service.record_metric(wiring.deps(), _request(body=True), _now())
    return no_content()


@app.route("/callback", methods=["POST"])
def post_callback() -> Response:
    service.request_callback(wiring.deps(), _request(body=True), _now())
    return no_content()


@app.schedule(Rate(5, unit=Rate.MINUTES), name="export_keys")
def export_keys(event: Any) -> dict[str, int | bool]:
    """Every 5 minutes: build the export files whose windows have closed (one run at a time)."""
    return files.export_keys(files_wiring.deps(), files.ExportRun(), _now()).as_dict()


@app.schedule(Rate(1, unit=Rate.HOURS), name="cleanup")
def cleanup(event: Any) -> dict[str, int]:
    """Hourly: delete keys, codes, tokens, nonces, registrations and export files past
    retention."""
    return service.apply_retention(wiring.deps(), None, _now())


@app.lambda_function(name="migrate")
def migrate(event: Any, context: Any) -> dict[str, list[str]]:
    """Run the ENF migrations (deploys invoke this once per release)."""
    target = event.get("target") if isinstance(event, dict) else None
    return {"ran": schema.migrate(enf_settings().database, target)}
