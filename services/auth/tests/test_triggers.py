"""The trigger Lambdas answer Cognito's events through the deployed entry points."""

from __future__ import annotations

import re
from typing import Any

from chalice.test import Client

from tracerstack.pytest_plugin import Partners

LAMBDAS = {
    "pre_sign_up",
    "define_auth_challenge",
    "create_auth_challenge",
    "verify_auth_challenge_response",
    "post_authentication",
    "post_authentication_consumer",
}


def cognito_event(trigger_source: str, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1",
        "region": "ap-southeast-2",
        "userPoolId": "ap-southeast-2_EXAMPLE",
        "userName": "0b7c6a1e-user",
        "callerContext": {"awsSdkVersion": "aws-sdk-js-3.0.0", "clientId": "client"},
        "triggerSource": trigger_source,
        "request": request,
        "response": {},
    }


def test_every_trigger_is_a_lambda_of_this_app() -> None:
    from app import app

    assert set(app.handler_map) >= LAMBDAS


def test_a_sign_in_runs_through_the_lambdas_and_emails_the_code(
    service_env: dict[str, str], outbox: Partners
) -> None:
    from app import app

    attributes = {"sub": "0b7c6a1e-user", "email": "tama@example.nz", "email_verified": "true"}
    with Client(app) as client:
        defined = client.lambda_.invoke(
            "define_auth_challenge",
            cognito_event(
                "DefineAuthChallenge_Authentication",
                {"userAttributes": attributes, "session": [], "userNotFound": False},
            ),
        ).payload
        assert defined["response"]["challengeName"] == "CUSTOM_CHALLENGE"
        created = client.lambda_.invoke(
            "create_auth_challenge",
            cognito_event(
                "CreateAuthChallenge_Authentication",
                {"userAttributes": attributes, "challengeName": "CUSTOM_CHALLENGE", "session": []},
            ),
        ).payload["response"]
        [email] = [item for item in outbox.outbox() if item["to"] == "tama@example.nz"]
        code = re.findall(r"\b\d{6}\b", email["body"])[0]
        assert created["privateChallengeParameters"] == {"code": code}
        assert email["sender"] == service_env["EMAIL_SENDER"]
        verified = client.lambda_.invoke(
            "verify_auth_challenge_response",
            cognito_event(
                "VerifyAuthChallengeResponse_Authentication",
                {
                    "userAttributes": attributes,
                    "privateChallengeParameters": created["privateChallengeParameters"],
                    "challengeAnswer": code,
                },
            ),
        ).payload
        assert verified["response"] == {"answerCorrect": True}
        client.lambda_.invoke(
            "post_authentication",
            cognito_event("PostAuthentication_Authentication", {"userAttributes": attributes}),
        )
    from covidtracer import aws

    messages = aws.sqs().receive_message(
        QueueUrl=service_env["POST_AUTHENTICATION_QUEUE_URL"], MaxNumberOfMessages=10
    )["Messages"]
    assert any('"userId": "0b7c6a1e-user"' in m["Body"] for m in messages)
