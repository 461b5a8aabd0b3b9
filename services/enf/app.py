"""The Exposure Notification key server API (DESIGN §4): a routing table.

Each handler decodes its request into an ``ApiRequest``, calls one use case of
``covidtracer.enfkeys.service`` (or, for the export job, ``covidtracer.enffiles.service``)
with the stage's adapters (``wiring.deps()``, built on first use) and encodes the answer.
Google's routes (``/api/verify``, ``/api/certificate``: ``covidtracer.verification``;
``/v1/publish``: ``covidtracer.publish``) take their body undecoded (a ``JsonRequest``):
its content type, size and fields are part of Google's contract. Those routes and COVID
Green's upload routes answer ``X-Chaff`` requests without running (``covidtracer.chaff``).
"""

# No `from __future__ import annotations` here: Chalice's IAM policy analyzer reads this
# module's symbol tables and fails on postponed annotations (`make package` exercises it).

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from chalice import Rate, Response  # type: ignore[attr-defined]
from chalice.app import Request

from covidtracer import chaff, health, logs, snapstart
from covidtracer.enffiles import service as files
from covidtracer.enffiles import wiring as files_wiring
from covidtracer.enfkeys import schema, service, wiring
from covidtracer.enfkeys.model import ApiRequest
from covidtracer.enfkeys.settings import enf_settings
from covidtracer.http import (
    ApiApp,
    ChaffRoute,
    as_bytes,
    bearer_token,
    chaff_answer_no_content,
    chaff_answer_padding,
    chaff_answer_token,
    chaff_middleware,
    json_body,
    json_response,
    no_content,
    source_ip,
)
from covidtracer.publish import service as publish
from covidtracer.publish import wiring as publish_wiring
from covidtracer.verification import service as verification
from covidtracer.verification import wiring as verification_wiring
from covidtracer.verification.model import JsonRequest

logs.configure()
app = ApiApp("covidtracer-enf")
T = TypeVar("T")
# SnapStart's init: what the first request would otherwise pay (covidtracer.snapstart).
snapstart.prepare(
    "covidtracer.enfkeys.wiring:deps",
    "covidtracer.enffiles.wiring:deps",
    imports=("psycopg2", "psycopg2.extras", "jwt", "covidtracer.db"),
    clients=("s3", "secretsmanager", "ssm", "kms", "cloudwatch"),
)


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


# A TypeVar, not PEP 695 syntax: Chalice's policy analyzer fails on type-parameter scopes.
def _call(  # noqa: UP047
    use_case: Callable[[service.Deps, ApiRequest, datetime], T], *, body: bool = False
) -> T:
    """Runs one use case on the current request, with the stage's adapters and the time."""
    return use_case(wiring.deps(), _request(body=body), _now())


def _google_request(request: Request) -> JsonRequest:
    """The current request for one of Google's routes: the body as sent."""
    return JsonRequest(
        raw_body=as_bytes(request.raw_body or b""),
        content_type=str(request.headers.get("content-type", "")),
        api_key=request.headers.get("x-api-key"),
        source_ip=source_ip(request),
    )


def _api_key_of_chaff(request: Request) -> None:
    # docs/api.md "Chaffing requests": chaff to the verification API needs a valid API key.
    verification.require_app(verification_wiring.deps(), _google_request(request))


def _tracker(size: int) -> chaff.Tracker:
    return chaff.Tracker(default_size=size, default_latency_ms=50)


# Each route's fake answer; sizes are a real answer's until real ones have been seen.
app.register_middleware(
    chaff_middleware(
        {
            "POST /api/verify": ChaffRoute(_tracker(520), chaff_answer_padding, _api_key_of_chaff),
            "POST /api/certificate": ChaffRoute(
                _tracker(560), chaff_answer_padding, _api_key_of_chaff
            ),
            "POST /v1/publish": ChaffRoute(_tracker(2900), chaff_answer_padding),
            "POST /exposures/verify": ChaffRoute(_tracker(47), chaff_answer_token),
            "POST /exposures": ChaffRoute(_tracker(0), chaff_answer_no_content),
        }
    ),
    "http",
)


@app.route("/health", methods=["GET"])
def get_health() -> Response:
    healthy, report = health.run(wiring.health_checks(enf_settings()))
    return json_response(report, 200 if healthy else 503)


@app.route("/register", methods=["POST"])
def post_register() -> Response:
    return json_response({"nonce": _call(service.start_registration)})


@app.route("/register", methods=["PUT"])
def put_register() -> Response:
    return json_response(_call(service.complete_registration, body=True))


@app.route("/register", methods=["DELETE"])
def delete_register() -> Response:
    _call(service.forget)
    return no_content()


@app.route("/refresh", methods=["POST"])
def post_refresh() -> Response:
    return json_response({"token": _call(service.refresh)})


@app.route("/ncts/verification-codes", methods=["POST"])
def post_verification_code() -> Response:
    expires_at = _call(service.request_code, body=True)
    return json_response(
        {"expiresAt": expires_at.isoformat(timespec="seconds").replace("+00:00", "Z")}, 201
    )


@app.route("/exposures/verify", methods=["POST"])
def post_exposures_verify() -> Response:
    return json_response({"token": str(_call(service.verify_code, body=True))})


@app.route("/exposures", methods=["POST"])
def post_exposures() -> Response:
    _call(service.upload_keys, body=True)
    return no_content()


@app.route("/exposures", methods=["GET"])
def get_exposures() -> Response:
    return json_response(_call(service.list_files))


@app.route("/api/verify", methods=["POST"], content_types=["*/*"])
def post_api_verify() -> Response:
    request = _google_request(_current())
    return json_response(verification.verify(verification_wiring.deps(), request, _now()))


@app.route("/api/certificate", methods=["POST"], content_types=["*/*"])
def post_api_certificate() -> Response:
    request = _google_request(_current())
    return json_response(verification.certificate(verification_wiring.deps(), request, _now()))


@app.route("/v1/publish", methods=["POST"], content_types=["*/*"])
def post_v1_publish() -> Response:
    request = _google_request(_current())
    return json_response(publish.publish(publish_wiring.deps(), request, _now()))


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
    return json_response(_call(service.exposure_config))


@app.route("/settings/notification", methods=["GET"])
def get_notification_settings() -> Response:
    return json_response(_call(service.notification_config))


@app.route("/metrics", methods=["POST"])
def post_metrics() -> Response:
    _call(service.record_metric, body=True)
    return no_content()


@app.route("/callback", methods=["POST"])
def post_callback() -> Response:
    _call(service.request_callback, body=True)
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
