"""GET /health reports each dependency of the app API."""

from __future__ import annotations

from conftest import stack_of_its_own

from tracerstack.bootstrap import Bootstrap
from tracerstack.pytest_plugin import get_health

# A stack of its own: a test deletes a table.
aws_stack = stack_of_its_own()


def test_health_is_200_when_every_table_and_the_feed_bucket_answer(
    service_env: dict[str, str],
) -> None:
    from app import app

    response = get_health(app)
    body = response.json()
    assert response.status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {
        "dynamodb:users",
        "dynamodb:personal_details",
        "dynamodb:exposure_events",
        "dynamodb:rate_limits",
        "dynamodb:sign_in_sessions",
        "s3:feed",
    }
    assert response.headers["Cache-Control"] == "no-store"


def test_health_is_503_and_names_the_missing_dependency(
    service_env: dict[str, str], aws_stack: Bootstrap
) -> None:
    from app import app

    aws_stack.client("dynamodb").delete_table(TableName=service_env["RATE_LIMITS_TABLE"])
    response = get_health(app)
    body = response.json()
    assert response.status == 503
    assert body["checks"]["dynamodb:rate_limits"] == {"status": "unavailable"}
    assert body["checks"]["dynamodb:users"]["status"] == "ok"
    assert service_env["RATE_LIMITS_TABLE"] not in response.body.decode()
