"""The Exposure Notification key server API (DESIGN §4): a routing table."""

from __future__ import annotations

from chalice import Response  # type: ignore[attr-defined]

from covidtracer import health, logs
from covidtracer.http import ApiApp, json_response
from covidtracer.settings import enf_settings

logs.configure()
app = ApiApp("covidtracer-enf")


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
