"""Passwordless sign-in (DESIGN §2.1): ``POST /user/auth/initiate`` and ``/confirm``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chalice.app import Blueprint, Response

from covidtracer import config
from covidtracer.http import json_body, json_response, source_ip

if TYPE_CHECKING:
    from covidtracer.signin.service import SignInDeps

bp = Blueprint(__name__)


@config.cached
def deps() -> SignInDeps:
    from covidtracer.contactdetails.settings import details_settings
    from covidtracer.signin import wiring

    return wiring.sign_in_deps(details_settings())


@bp.route("/user/auth/initiate", methods=["POST"])
def initiate_sign_in() -> Response:
    from covidtracer.signin import service

    request = bp.current_request
    body, now = json_body(request), datetime.now(UTC)
    initiated = service.initiate(deps(), body, now, source_ip=source_ip(request))
    return json_response(initiated.body())


@bp.route("/user/auth/confirm", methods=["POST"])
def confirm_sign_in() -> Response:
    from covidtracer.signin import service

    body, now = json_body(bp.current_request), datetime.now(UTC)
    return json_response(service.confirm(deps(), body, now).body())
