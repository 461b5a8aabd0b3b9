"""Diary uploads (DESIGN §2.3): ``POST /v2/user/location-history``, no sign-in."""

from __future__ import annotations

from datetime import UTC, datetime

from chalice.app import Blueprint, Response

from covidtracer.diary import service, wiring
from covidtracer.http import json_body, no_content, source_ip

bp = Blueprint(__name__)


@bp.route("/v2/user/location-history", methods=["POST"])
def post_location_history() -> Response:
    request = bp.current_request
    deps = wiring.dependencies()
    upload = service.DiaryUploadRequest(
        json_body(request, max_bytes=deps.rules.max_body_bytes), source_ip(request)
    )
    service.upload_diary(deps, upload, datetime.now(UTC))
    return no_content()
