"""The app API (DESIGN §2): a routing table; each route decodes, calls one service, encodes."""

from __future__ import annotations

from chalice import Response  # type: ignore[attr-defined]

from covidtracer import health, logs
from covidtracer.http import ApiApp, json_body, json_response, source_ip
from covidtracer.settings import details_settings

logs.configure()
app = ApiApp("covidtracer-details")


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
    from covidtracer.auth import service

    request = app.current_request
    initiated = service.default().initiate(json_body(request), source_ip(request))
    return json_response(initiated.body())


@app.route("/user/auth/confirm", methods=["POST"])
def confirm_sign_in() -> Response:
    from covidtracer.auth import service

    confirmed = service.default().confirm(json_body(app.current_request))
    return json_response(confirmed.body())
