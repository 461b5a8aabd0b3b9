"""The Exposure Notification key server API (DESIGN §4): a routing table."""

# No `from __future__ import annotations` here: Chalice's IAM policy analyzer reads this
# module's symbol tables and fails on postponed annotations (`make package` exercises it).

from datetime import UTC, datetime
from typing import Any

from chalice import Rate, Response  # type: ignore[attr-defined]

from covidtracer import health, logs
from covidtracer import settings as config
from covidtracer.http import (
    ApiApp,
    bearer_token,
    json_body,
    json_response,
    no_content,
    source_ip,
)
from covidtracer.settings import EnfSettings, enf_settings

logs.configure()
app = ApiApp("covidtracer-enf")


def _service() -> Any:
    """The service module, imported on first use (it pulls in the I/O adapters)."""
    from covidtracer.enfkeys import service

    return service


@config.built_from_settings
def _ports() -> Any:
    """Adapters for the current settings, built once per execution environment."""
    return _service().ports_for(enf_settings())


def _now() -> datetime:
    return datetime.now(UTC)


def _bearer() -> str | None:
    return bearer_token(app.current_request)


@app.route("/health", methods=["GET"])
def get_health() -> Response:
    settings = enf_settings()
    healthy, report = health.run(
        {
            **health.database_check(settings.database),
            **health.bucket_check("enf_exports", settings.exports_bucket),
        }
    )
    return json_response(report, 200 if healthy else 503)


@app.route("/register", methods=["POST"])
def post_register() -> Response:
    nonce = _service().start_registration(
        enf_settings(), _ports(), _now(), source_ip(app.current_request)
    )
    return json_response({"nonce": nonce})


@app.route("/register", methods=["PUT"])
def put_register() -> Response:
    request = app.current_request
    return json_response(
        _service().complete_registration(
            enf_settings(), _ports(), json_body(request), _now(), source_ip(request)
        )
    )


@app.route("/register", methods=["DELETE"])
def delete_register() -> Response:
    _service().forget(enf_settings(), _ports(), _bearer(), _now())
    return no_content()


@app.route("/refresh", methods=["POST"])
def post_refresh() -> Response:
    token = _service().refresh(enf_settings(), _ports(), _bearer(), _now())
    return json_response({"token": token})


@app.route("/ncts/verification-codes", methods=["POST"])
def post_verification_code() -> Response:
    request = app.current_request
    expires_at = _service().request_code(
        enf_settings(), _ports(), request.headers.get("x-api-key"), json_body(request), _now()
    )
    return json_response(
        {"expiresAt": expires_at.isoformat(timespec="seconds").replace("+00:00", "Z")}, 201
    )


@app.route("/exposures/verify", methods=["POST"])
def post_exposures_verify() -> Response:
    request = app.current_request
    token = _service().verify_code(
        enf_settings(), _ports(), _bearer(), json_body(request), _now(), source_ip(request)
    )
    return json_response({"token": str(token)})


@app.route("/exposures", methods=["POST"])
def post_exposures() -> Response:
    body = json_body(app.current_request)
    _service().upload_keys(enf_settings(), _ports(), _bearer(), body, _now())
    return no_content()


def _exports() -> Any:
    """The export use cases, imported on first use."""
    from covidtracer.enffiles import service as export_service

    return export_service


def _export_store(settings: EnfSettings) -> Any:
    from covidtracer.enffiles.store import S3FileStore

    return S3FileStore(settings.exports_bucket)


@app.route("/exposures", methods=["GET"])
def get_exposures() -> Response:
    settings = enf_settings()
    query = app.current_request.query_params or {}
    files = _service().list_files(settings, _ports(), _bearer(), query, _now())
    return json_response(files)


@app.route("/data/{folder}/{name}", methods=["GET"])
def get_export_file(folder: str, name: str) -> Response:
    # Export paths are always exposures/<file>.zip: two segments (chalice local has no
    # greedy {path+} parameters, and nothing else in the bucket may be served).
    settings = enf_settings()
    body = _service().read_file(
        settings,
        _ports(),
        _export_store(settings),
        _bearer(),
        f"{folder}/{name}",
        _now(),
    )
    return Response(
        body=body,
        status_code=200,
        headers={"Content-Type": "application/zip", "Cache-Control": "no-store"},
    )


@app.route("/settings/exposures", methods=["GET"])
def get_exposure_settings() -> Response:
    query = app.current_request.query_params or {}
    return json_response(
        _service().exposure_config(enf_settings(), _ports(), _bearer(), query, _now())
    )


@app.route("/settings/notification", methods=["GET"])
def get_notification_settings() -> Response:
    return json_response(_service().notification_config(enf_settings(), _ports()))


@app.route("/metrics", methods=["POST"])
def post_metrics() -> Response:
    body = json_body(app.current_request)
    _service().record_metric(enf_settings(), _ports(), _bearer(), body, _now())
    return no_content()


@app.route("/callback", methods=["POST"])
def post_callback() -> Response:
    body = json_body(app.current_request)
    _service().request_callback(enf_settings(), _ports(), _bearer(), body, _now())
    return no_content()


@app.schedule(Rate(5, unit=Rate.MINUTES), name="export_keys")
def export_keys(event: Any) -> dict[str, int | bool]:
    """Every 5 minutes: build the export files whose windows have closed (one run at a time)."""
    from covidtracer.enffiles.kms import KmsSigner

    settings = enf_settings()
    result = _exports().export_keys(
        settings,
        KmsSigner(settings.export_signing_key_id, settings.export.kms_message_type),
        _export_store(settings),
        _now(),
        padding_key=_ports().code_hash_key,
    )
    summary: dict[str, int | bool] = result.as_dict()
    return summary


@app.schedule(Rate(1, unit=Rate.HOURS), name="cleanup")
def cleanup(event: Any) -> dict[str, int]:
    """Hourly: delete keys, codes, tokens, nonces, registrations and export files past
    retention."""
    settings = enf_settings()
    result: dict[str, int] = _service().apply_retention(settings, _export_store(settings), _now())
    return result


@app.lambda_function(name="migrate")
def migrate(event: Any, context: Any) -> dict[str, list[str]]:
    """Run the ENF migrations (deploys invoke this once per release)."""
    from covidtracer.enfkeys import schema

    target = event.get("target") if isinstance(event, dict) else None
    return {"ran": schema.migrate(enf_settings().database, target)}
