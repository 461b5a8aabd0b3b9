"""Passwordless sign-in (DESIGN §2.1): ``POST /user/auth/initiate`` and ``/confirm``."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from covidtracer.http import json_body, json_response, source_ip

bp = Blueprint(__name__)


@bp.route("/user/auth/initiate", methods=["POST"])
def initiate_sign_in() -> Response:
    from covidtracer.auth import service

    request = bp.current_request
    initiated = service.default().initiate(json_body(request), source_ip(request))
    return json_response(initiated.body())


@bp.route("/user/auth/confirm", methods=["POST"])
def confirm_sign_in() -> Response:
    from covidtracer.auth import service

    confirmed = service.default().confirm(json_body(bp.current_request))
    return json_response(confirmed.body())
