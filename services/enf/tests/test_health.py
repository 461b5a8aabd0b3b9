"""GET /health reports PostgreSQL and the exports bucket."""

from __future__ import annotations

import json

import pytest

from covidtracer import settings
from tracerstack.pytest_plugin import free_port, get_health


def test_health_is_200_with_the_database_and_bucket(service_env: dict[str, str]) -> None:
    from app import app

    response = get_health(app)
    body = response.json()
    assert response.status == 200, body
    assert body["checks"]["postgresql"]["status"] == "ok"
    assert body["checks"]["s3:enf_exports"]["status"] == "ok"
    assert body["version"] == service_env["RELEASE_VERSION"]


def test_health_is_503_when_the_database_is_down(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import app

    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/enf")
    monkeypatch.setenv("DATABASE_CONNECT_TIMEOUT", "1")
    settings.reset()
    response = get_health(app)
    body = response.json()
    assert response.status == 503
    assert body["checks"]["postgresql"] == {"status": "unavailable"}
    assert body["checks"]["s3:enf_exports"]["status"] == "ok"


def test_a_json_body_that_api_gateway_delivers_base64_encoded_is_read(
    enf_env: dict[str, str],
) -> None:
    """With ``*/*`` among the API's binary media types (so iOS gets export zips as bytes),
    API Gateway hands every request body to the Lambda base64-encoded."""
    import base64

    from app import app

    event = {
        "resource": "/register",
        "path": "/register",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", "Accept": "*/*"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/register",
            "httpMethod": "POST",
            "requestId": "r-1",
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": base64.b64encode(b"{}").decode(),
        "isBase64Encoded": True,
    }
    response = app(event, None)
    assert response["statusCode"] == 200, response
    assert len(json.loads(response["body"])["nonce"]) == 64
