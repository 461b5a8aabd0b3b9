"""A signed-in person's contact details (DESIGN §2.2): ``/user/details``. The caller is
always the verified token's user; nothing in a body or path names another record."""

from __future__ import annotations

from datetime import UTC, datetime

from chalice.app import Blueprint, Response

from covidtracer.contactdetails import service, wiring
from covidtracer.http import bearer_token, json_body, json_response, no_content

bp = Blueprint(__name__)
PATH = "/user/details"


@bp.route(PATH, methods=["GET"])
def get_details() -> Response:
    record = service.get_contact_details(wiring.dependencies(), _caller(), datetime.now(UTC))
    return json_response(record)


@bp.route(PATH, methods=["PUT"])
def put_details() -> Response:
    change, now = _change(), datetime.now(UTC)
    return json_response(service.replace_contact_details(wiring.dependencies(), change, now))


@bp.route(PATH, methods=["PATCH"])
def patch_details() -> Response:
    change, now = _change(), datetime.now(UTC)
    return json_response(service.update_contact_details(wiring.dependencies(), change, now))


@bp.route(PATH, methods=["DELETE"])
def delete_details() -> Response:
    service.delete_contact_details(wiring.dependencies(), _caller(), datetime.now(UTC))
    return no_content()


def _caller() -> str:
    """The caller's userId from their bearer access token (DESIGN §2.2): verified here when
    ``VERIFY_TOKENS_IN_APP`` is on, else taken from API Gateway's Cognito authorizer.
    Raises ``Unauthorized`` (401) for a missing, forged, expired or foreign token."""
    from covidtracer.signin import tokens

    request = bp.current_request
    return tokens.authenticated_user_id(bearer_token(request), request.context or {})


def _change() -> service.DetailsChange:
    """The caller (from the verified token, checked before the body is read) and the body."""
    user_id = _caller()
    return service.DetailsChange(user_id, json_body(bp.current_request))
