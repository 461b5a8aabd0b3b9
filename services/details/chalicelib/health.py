"""``GET /health``: each table and the feed bucket the app API depends on."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from covidtracer import health
from covidtracer.contactdetails.settings import details_settings
from covidtracer.http import json_response

bp = Blueprint(__name__)


@bp.route("/health", methods=["GET"])
def get_health() -> Response:
    settings = details_settings()
    healthy, report = health.run(
        {
            **health.table_checks(settings.tables),
            **health.bucket_check("feed", settings.events.feed_bucket),
        }
    )
    return json_response(report, 200 if healthy else 503)
