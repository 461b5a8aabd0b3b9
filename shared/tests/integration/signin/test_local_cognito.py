"""The local custom-auth driver against moto: the triggers run in Cognito's order with
Cognito's event shapes, sessions live in DynamoDB, and moto mints the tokens."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from covidtracer.contactdetails.settings import details_settings
from covidtracer.errors import InvalidAuthSession, MfaEnabled
from covidtracer.signin import triggers, wiring
from covidtracer.signin.cognito import CognitoUser, Retry, Tokens
from covidtracer.signin.repository import DynamoUsers
from covidtracer.signin.tokens import verifier
from tracerstack.bootstrap import Bootstrap
from tracerstack.local_cognito import (
    DynamoLocalSessions,
    LocalCognito,
    TriggerRunner,
    auth_trigger_deps,
    trigger_runner,
)
from tracerstack.pytest_plugin import Partners


class Spy:
    """Records every trigger call (name, a copy of the event) and delegates to the real one."""

    def __init__(self, real: TriggerRunner) -> None:
        self.real = real
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((name, json.loads(json.dumps(event))))
        return self.real(name, event)

    def names(self) -> list[str]:
        names = [name for name, _ in self.calls]
        self.calls.clear()
        return names


@pytest.fixture
def clock() -> list[float]:
    return [1_700_000_000.0]


@pytest.fixture
def spy(service_env: dict[str, str]) -> Spy:
    # As local_cognito() wires them: signing as the auth role, as the auth Lambdas do.
    return Spy(trigger_runner(auth_trigger_deps()))


@pytest.fixture
def driver(service_env: dict[str, str], spy: Spy, clock: list[float]) -> LocalCognito:
    details = details_settings()
    return LocalCognito(
        user_pool_id=details.user_pool_id,
        region=details.aws.region,
        sessions=DynamoLocalSessions(details.tables.sign_in_sessions),
        run_trigger=spy,
        session_validity_seconds=300,
        now=lambda: clock[0],
    )


def code_for(outbox: Partners, email: str) -> str:
    bodies = [i["body"] for i in outbox.outbox() if i["channel"] == "email" and i["to"] == email]
    return re.findall(r"\b\d{6}\b", bodies[-1])[0]


def client_id(service_env: dict[str, str]) -> str:
    return str(json.loads(service_env["APP_CLIENT_IDS"])["ios"])


def begin(driver: LocalCognito, service_env: dict[str, str]) -> tuple[str, CognitoUser, str]:
    """A new account with a sign-in started: (email, user, Cognito session)."""
    email = f"p-{uuid.uuid4().hex[:8]}@example.nz"
    user = driver.find_or_create_user(email)
    return email, user, driver.start_sign_in(user, client_id(service_env))


def test_triggers_run_in_cognitos_order_with_its_event_shapes(
    driver: LocalCognito, spy: Spy, outbox: Partners, service_env: dict[str, str]
) -> None:
    email = f"p-{uuid.uuid4().hex[:8]}@example.nz"
    user = driver.find_or_create_user(email)
    assert spy.names() == ["pre_sign_up"]
    assert driver.find_or_create_user(email) == user
    assert spy.names() == [], "an existing account is not signed up again"

    session = driver.start_sign_in(user, client_id(service_env))
    define, create = spy.calls
    assert spy.names() == ["define_auth_challenge", "create_auth_challenge"]
    for _, event in (define, create):
        assert set(event) == {
            "version", "region", "userPoolId", "userName", "callerContext", "triggerSource",
            "request", "response",
        }  # fmt: skip
        assert event["userPoolId"] == service_env["USER_POOL_ID"]
        assert event["userName"] == user.username
        assert event["callerContext"]["clientId"] == client_id(service_env)
        assert event["request"]["userAttributes"]["sub"] == user.user_id
        assert event["request"]["userAttributes"]["email"] == email
    assert define[1]["triggerSource"] == "DefineAuthChallenge_Authentication"
    assert define[1]["request"]["session"] == []
    assert create[1]["request"]["challengeName"] == "CUSTOM_CHALLENGE"

    code = code_for(outbox, email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    retry = driver.answer(user.user_id, client_id(service_env), session, wrong)
    assert isinstance(retry, Retry) and retry.session != session
    verify, define, create = spy.calls
    assert spy.names() == [
        "verify_auth_challenge_response",
        "define_auth_challenge",
        "create_auth_challenge",
    ]
    assert verify[1]["request"]["privateChallengeParameters"] == {"code": code}
    assert verify[1]["request"]["challengeAnswer"] == wrong
    assert define[1]["request"]["session"] == [
        {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": False,
         "challengeMetadata": f"CODE-{code}"},
    ]  # fmt: skip
    assert create[1]["request"]["session"] == define[1]["request"]["session"]

    with pytest.raises(InvalidAuthSession):  # a session string answers once
        driver.answer(user.user_id, client_id(service_env), session, code)
    spy.calls.clear()

    tokens = driver.answer(user.user_id, client_id(service_env), retry.session, code)
    assert isinstance(tokens, Tokens)
    assert spy.names() == [
        "verify_auth_challenge_response",
        "define_auth_challenge",
        "post_authentication",
    ]
    assert verifier().user_id(tokens.access_token) == user.user_id
    assert len([i for i in outbox.outbox() if i["to"] == email]) == 1


def test_three_wrong_answers_fail_the_flow(
    driver: LocalCognito, outbox: Partners, service_env: dict[str, str]
) -> None:
    email, user, session = begin(driver, service_env)
    wrong = f"{(int(code_for(outbox, email)) + 1) % 1_000_000:06d}"
    for _ in range(2):
        answered = driver.answer(user.user_id, client_id(service_env), session, wrong)
        assert isinstance(answered, Retry)
        session = answered.session
    with pytest.raises(InvalidAuthSession):
        driver.answer(user.user_id, client_id(service_env), session, wrong)


def test_a_session_expires_after_the_session_validity(
    driver: LocalCognito, outbox: Partners, service_env: dict[str, str], clock: list[float]
) -> None:
    email, user, session = begin(driver, service_env)
    clock[0] += 300
    with pytest.raises(InvalidAuthSession):
        driver.answer(user.user_id, client_id(service_env), session, code_for(outbox, email))


def test_a_session_belongs_to_its_client(
    driver: LocalCognito, outbox: Partners, service_env: dict[str, str]
) -> None:
    email, user, session = begin(driver, service_env)
    web = json.loads(service_env["APP_CLIENT_IDS"])["web"]
    with pytest.raises(InvalidAuthSession):
        driver.answer(user.user_id, web, session, code_for(outbox, email))


def test_sign_in_queues_the_users_upsert_and_the_consumer_writes_the_row(
    driver: LocalCognito, outbox: Partners, service_env: dict[str, str], aws_stack: Bootstrap
) -> None:
    email, user, session = begin(driver, service_env)
    driver.answer(user.user_id, client_id(service_env), session, code_for(outbox, email))

    queue = service_env["POST_AUTHENTICATION_QUEUE_URL"]
    # The test plays the queue's event source mapping.
    sqs = aws_stack.client("sqs")
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    mine = [m for m in received if user.user_id in m["Body"]]
    assert json.loads(mine[0]["Body"])["email"] == email
    records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in mine]
    answer = triggers.consume_post_authentication(
        wiring.trigger_deps(), {"Records": records}, datetime.now(UTC)
    )
    assert answer == {"batchItemFailures": []}
    row = DynamoUsers(service_env["USERS_TABLE"]).get(user.user_id)
    assert row is not None and row.email == email and row.email_verified


def test_an_account_that_turned_on_mfa_is_asked_for_it_at_the_end(
    driver: LocalCognito, outbox: Partners, service_env: dict[str, str], aws_stack: Bootstrap
) -> None:
    email, user, session = begin(driver, service_env)
    tokens = driver.answer(user.user_id, client_id(service_env), session, code_for(outbox, email))
    assert isinstance(tokens, Tokens)
    cognito = aws_stack.client("cognito-idp")  # a legacy account's MFA: set up by hand
    cognito.associate_software_token(AccessToken=tokens.access_token)
    cognito.verify_software_token(AccessToken=tokens.access_token, UserCode="123456")
    cognito.admin_set_user_mfa_preference(
        UserPoolId=service_env["USER_POOL_ID"],
        Username=user.username,
        SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
    )
    session = driver.start_sign_in(user, client_id(service_env))
    with pytest.raises(MfaEnabled) as caught:
        driver.answer(user.user_id, client_id(service_env), session, code_for(outbox, email))
    assert caught.value.user_id == user.user_id
