from __future__ import annotations

import json
import logging

import pytest
from chalice.test import Client

from covidtracer import errors
from covidtracer.http import ApiApp, json_body, json_response


@pytest.mark.parametrize(
    ("error", "status", "type_"),
    [
        (errors.ValidationError.of("Email", "The email is invalid."), 400, "urn:errors:validation"),
        (errors.InvalidAuthCode(), 400, "urn:errors:invalid-auth-code"),
        (errors.InvalidAuthSession(), 400, "urn:errors:invalid-auth-session"),
        (errors.Disabled(), 400, "urn:errors:disabled"),
        (errors.Unauthorized(), 401, "urn:errors:unauthorized"),
        (errors.Forbidden(), 403, "urn:errors:forbidden"),
        (errors.MfaEnabled("user-1"), 403, "urn:errors:invalid-auth-mfa-enabled"),
        (errors.NotFound(), 404, "urn:errors:not-found"),
        (errors.Gone(), 410, "urn:errors:gone"),
        (errors.TooManyRequests(30), 429, "urn:errors:too-many-requests"),
        (errors.Unavailable("ncts"), 503, "urn:errors:unavailable"),
        (errors.InternalError(), 500, "urn:errors:internal"),
    ],
)
def test_every_domain_error_has_its_documented_type_and_status(
    error: errors.DomainError, status: int, type_: str
) -> None:
    body = error.body()
    assert (body["type"], body["status"], error.status) == (type_, status, status)
    assert body["title"]


def test_validation_errors_carry_messages_per_field() -> None:
    body = errors.ValidationError({"ConsentCode": ["The consent code is invalid."]}).body()
    assert body["errors"] == {"ConsentCode": ["The consent code is invalid."]}


def test_mfa_error_carries_the_user_id_and_429_a_retry_after() -> None:
    assert errors.MfaEnabled("abc").body()["userId"] == "abc"
    assert errors.TooManyRequests(42).headers() == {"Retry-After": "42"}


def test_unavailable_keeps_the_dependency_out_of_the_body() -> None:
    error = errors.Unavailable("ncts")
    assert "ncts" not in json.dumps(error.body())
    assert "ncts" in str(error)


def _app() -> ApiApp:
    app = ApiApp("test")

    @app.route("/ok", methods=["GET"])
    def ok() -> object:
        return json_response({"fine": True})

    @app.route("/echo", methods=["POST"])
    def echo() -> object:
        return json_response(json_body(app.current_request))

    @app.route("/invalid", methods=["GET"])
    def invalid() -> object:
        raise errors.ValidationError.of("Email", "The email is invalid.")

    @app.route("/limited", methods=["GET"])
    def limited() -> object:
        raise errors.TooManyRequests(60)

    @app.route("/crash", methods=["POST"])
    def crash() -> object:
        raise RuntimeError(f"secret detail {app.current_request.raw_body!r}")

    return app


def test_a_domain_error_becomes_its_status_headers_and_body() -> None:
    with Client(_app()) as client:
        response = client.http.get("/limited")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert response.headers["Cache-Control"] == "no-store"
    assert json.loads(response.body)["type"] == "urn:errors:too-many-requests"


def test_a_crash_is_a_bare_500_that_echoes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with Client(_app()) as client, caplog.at_level(logging.ERROR):
        response = client.http.post(
            "/crash",
            body=b'{"phone": "+64211234567"}',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 500
    body = json.loads(response.body)
    assert body == {
        "type": "urn:errors:internal",
        "title": "An unexpected error occurred.",
        "status": 500,
    }
    assert b"+64211234567" not in response.body and b"Traceback" not in response.body


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "The body is not valid JSON."),
        (b"[1, 2]", "The body must be a JSON object."),
        (b"", "A JSON body is required."),
    ],
)
def test_a_malformed_body_is_a_validation_error(raw: bytes, message: str) -> None:
    with Client(_app()) as client:
        response = client.http.post("/echo", body=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert json.loads(response.body)["errors"] == {"Body": [message]}


def test_a_wrong_content_type_gets_the_error_shape_not_chalices() -> None:
    with Client(_app()) as client:
        response = client.http.post(
            "/echo", body=b"a=b", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    assert response.status_code == 400
    assert json.loads(response.body)["type"] == "urn:errors:validation"


def test_success_responses_are_not_cached() -> None:
    with Client(_app()) as client:
        response = client.http.get("/ok")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert json.loads(response.body) == {"fine": True}


def test_debug_is_off_so_no_stack_trace_can_reach_a_client() -> None:
    assert _app().debug is False


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": "\\ud800"}',
        b'{"\\uDFFF": 1}',
        '{"a": "\\udc00"}'.encode("utf-16"),
        b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}",
        b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}",
        b'{"a": NaN}',
        b'{"a": -Infinity}',
    ],
)
def test_the_json_boundary_refuses_what_no_handler_could_encode_or_walk(raw: bytes) -> None:
    from types import SimpleNamespace

    with pytest.raises(errors.ValidationError) as caught:
        json_body(SimpleNamespace(raw_body=raw))  # type: ignore[arg-type]
    assert list(caught.value.errors) == ["Body"]
    assert isinstance(caught.value, errors.ValidationError)


def test_the_json_boundary_keeps_real_text_and_escapes() -> None:
    from types import SimpleNamespace

    raw = '{"a": "Māori \\u00e9 😀 \\ud83d\\ude00", "b": [[1]]}'.encode()
    assert json_body(SimpleNamespace(raw_body=raw))["a"] == "Māori é 😀 😀"  # type: ignore[arg-type]


def test_a_blueprints_routes_get_the_same_error_mapping_as_the_apps() -> None:
    from chalice import Blueprint  # type: ignore[attr-defined]

    routes = Blueprint(__name__)

    @routes.route("/limited", methods=["GET"])
    def limited() -> object:
        raise errors.TooManyRequests(60)

    app = ApiApp("test")
    app.register_blueprint(routes, url_prefix="/bp")
    with Client(app) as client:
        response = client.http.get("/bp/limited")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "60")
    assert json.loads(response.body)["type"] == "urn:errors:too-many-requests"


def test_invalid_settings_are_a_503_whose_problems_reach_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from covidtracer.config import SettingsError

    app = ApiApp("test")

    @app.route("/configured", methods=["GET"])
    def configured() -> object:
        raise SettingsError("demo", ["USERS_TABLE is required"])

    with Client(app) as client, caplog.at_level(logging.ERROR):
        response = client.http.get("/configured")
    assert json.loads(response.body)["type"] == "urn:errors:unavailable"
    assert response.status_code == 503
    logged = [r for r in caplog.records if r.getMessage() == "settings are invalid"]
    assert logged and logged[0].problems == ["USERS_TABLE is required"]  # type: ignore[attr-defined]
