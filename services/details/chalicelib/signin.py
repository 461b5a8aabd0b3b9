"""Passwordless sign-in (DESIGN §2.1): ``POST /user/auth/initiate`` and ``/confirm``."""

from __future__ import annotations

from datetime import UTC, datetime

from chalice.app import Blueprint, Response

from covidtracer.http import json_body, json_response, source_ip

bp = Blueprint(__name__)


@bp.route("/user/auth/initiate", methods=["POST"])
def initiate_sign_in() -> Response:
    from covidtracer.signin import service, wiring

    request = bp.current_request
    body, now = json_body(request), datetime.now(UTC)
    initiated = service.initiate(wiring.sign_in_deps(), body, now, source_ip=source_ip(request))
    return json_response(initiated.body())


@bp.route("/user/auth/confirm", methods=["POST"])
def confirm_sign_in() -> Response:
    from covidtracer.signin import service, wiring

    body, now = json_body(bp.current_request), datetime.now(UTC)
    return json_response(service.confirm(wiring.sign_in_deps(), body, now).body())
