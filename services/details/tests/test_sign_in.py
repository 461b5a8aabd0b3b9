"""Passwordless sign-in through the app API (DESIGN §2.1), against moto over HTTP: the local
Cognito driver runs the auth triggers, the code goes out through moto's SES to the outbox,
and the access token is checked against the pool's JWKS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from chalice.test import Client
from sign_in_flow import codes_sent_to, confirm, initiate, new_email, post

from covidtracer import aws, settings
from covidtracer.signin.tokens import cognito_issuer
from tracerstack.bootstrap import Bootstrap
from tracerstack.environment import service_environment
from tracerstack.pytest_plugin import Partners


@pytest.fixture
def client(service_env: dict[str, str], outbox: Partners) -> Iterator[Client]:
    from app import app

    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def client_ids(service_env: dict[str, str]) -> dict[str, str]:
    return json.loads(service_env["APP_CLIENT_IDS"])  # type: ignore[no-any-return]


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_person_signs_in_with_the_emailed_code_and_keeps_their_user_id(
    client: Client, client_ids: dict[str, str], outbox: Partners, service_env: dict[str, str]
) -> None:
    email = new_email()
    started = initiate(client, client_ids["ios"], email)
    assert set(started) == {"verificationId", "userId"}
    uuid.UUID(started["userId"])
    [code] = codes_sent_to(outbox, email)
    [sent] = [item for item in outbox.outbox() if item["to"] == email]
    assert sent["sender"] == service_env["EMAIL_SENDER"]

    status, body = confirm(client, client_ids["ios"], email, code, started["verificationId"])
    assert status == 200, body
    assert set(body) == {"accessToken", "userId"}
    assert body["userId"] == started["userId"]

    pool_id = service_env["USER_POOL_ID"]
    jwks = jwt.PyJWKClient(f"{service_env['AWS_ENDPOINT_URL']}/{pool_id}/.well-known/jwks.json")
    claims = jwt.decode(
        body["accessToken"],
        jwks.get_signing_key_from_jwt(body["accessToken"]).key,
        algorithms=["RS256"],
        issuer=cognito_issuer(service_env["AWS_REGION"], pool_id),
    )
    assert claims["sub"] == started["userId"]
    assert claims["token_use"] == "access"
    assert claims["client_id"] == client_ids["ios"]

    # Later sign-ins, on another device and with the address typed differently, are the
    # same account.
    again = initiate(client, client_ids["android"], f"  {email.upper()} ")
    assert again["userId"] == started["userId"]
    assert again["verificationId"] != started["verificationId"]
    code = codes_sent_to(outbox, email)[-1]
    status, body = confirm(client, client_ids["android"], email, code, again["verificationId"])
    assert status == 200, body
    assert body["userId"] == started["userId"]


def test_a_wrong_code_can_be_retried_with_the_same_verification_id(
    client: Client, client_ids: dict[str, str], outbox: Partners
) -> None:
    email = new_email()
    started = initiate(client, client_ids["web"], email)
    [code] = codes_sent_to(outbox, email)

    status, body = confirm(client, client_ids["web"], email, wrong(code), started["verificationId"])
    assert status == 400
    assert body["type"] == "urn:errors:invalid-auth-code"
    status, body = confirm(client, client_ids["web"], email, code, started["verificationId"])
    assert status == 200, body
    assert codes_sent_to(outbox, email) == [code], "a retry reuses the code and sends nothing"


def test_three_wrong_codes_end_the_session(
    client: Client, client_ids: dict[str, str], outbox: Partners
) -> None:
    email = new_email()
    started = initiate(client, client_ids["ios"], email)
    [code] = codes_sent_to(outbox, email)
    answers = [
        confirm(client, client_ids["ios"], email, wrong(code), started["verificationId"])
        for _ in range(3)
    ]
    assert [(status, body["type"]) for status, body in answers] == [
        (400, "urn:errors:invalid-auth-code"),
        (400, "urn:errors:invalid-auth-code"),
        (400, "urn:errors:invalid-auth-session"),
    ]
    status, body = confirm(client, client_ids["ios"], email, code, started["verificationId"])
    assert status == 400
    assert body["type"] == "urn:errors:invalid-auth-session"


def test_a_resend_sends_a_new_code_and_the_old_one_stops_working(
    client: Client, client_ids: dict[str, str], outbox: Partners
) -> None:
    email = new_email()
    first = initiate(client, client_ids["ios"], email)
    second = initiate(client, client_ids["ios"], email)
    old_code, new_code = codes_sent_to(outbox, email)
    assert old_code != new_code  # 1 in a million they coincide; then rerun

    status, body = confirm(client, client_ids["ios"], email, old_code, first["verificationId"])
    assert (status, body["type"]) == (400, "urn:errors:invalid-auth-session")
    status, body = confirm(client, client_ids["ios"], email, old_code, second["verificationId"])
    assert (status, body["type"]) == (400, "urn:errors:invalid-auth-code")
    status, body = confirm(client, client_ids["ios"], email, new_code, second["verificationId"])
    assert status == 200, body


def test_a_confirm_must_come_from_the_same_email_and_client(
    client: Client, client_ids: dict[str, str], outbox: Partners
) -> None:
    email = new_email()
    started = initiate(client, client_ids["ios"], email)
    [code] = codes_sent_to(outbox, email)
    for client_id, address in ((client_ids["ios"], new_email()), (client_ids["web"], email)):
        status, body = confirm(client, client_id, address, code, started["verificationId"])
        assert (status, body["type"]) == (400, "urn:errors:invalid-auth-session")
    status, body = confirm(client, client_ids["ios"], email, code, "not-a-verification-id")
    assert (status, body["type"]) == (400, "urn:errors:invalid-auth-session")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"clientId": "someone-elses-app", "email": "a@example.nz"}, "ClientId"),
        ({"email": "a@example.nz"}, "ClientId"),
        ({"clientId": "IOS", "email": "not-an-email"}, "Email"),
        ({"clientId": "IOS", "email": "a@example"}, "Email"),
        ({"clientId": "IOS", "email": ["a@example.nz"]}, "Email"),
        ({"clientId": "IOS"}, "Email"),
        ({"clientId": "IOS", "email": "a b@example.nz"}, "Email"),
        ({"clientId": "IOS", "email": f"{'a' * 250}@example.nz"}, "Email"),
        ("not json", "Body"),
        ([], "Body"),
    ],
)
def test_initiate_rejects_bad_input_with_a_validation_error(
    client: Client, client_ids: dict[str, str], outbox: Partners, body: Any, field: str
) -> None:
    if isinstance(body, dict) and body.get("clientId") == "IOS":
        body = {**body, "clientId": client_ids["ios"]}
    status, answer, _ = post(client, "/user/auth/initiate", body)
    assert status == 400
    assert answer["type"] == "urn:errors:validation"
    assert field in answer["errors"]
    assert outbox.outbox() == []


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 456", "١٢٣٤٥٦", 123456, None])
def test_confirm_rejects_a_code_that_is_not_six_digits(
    client: Client, client_ids: dict[str, str], code: Any
) -> None:
    status, body, _ = post(
        client,
        "/user/auth/confirm",
        {
            "clientId": client_ids["ios"],
            "email": "a@example.nz",
            "code": code,
            "verificationId": "x",
        },
    )
    assert status == 400
    assert body["type"] == "urn:errors:validation"
    assert set(body["errors"]) == {"Code"}


def test_the_sixth_initiate_for_one_email_in_the_window_is_throttled(
    client: Client, client_ids: dict[str, str], outbox: Partners
) -> None:
    email = new_email()
    for _ in range(5):
        initiate(client, client_ids["ios"], email)
    status, body, headers = post(
        client, "/user/auth/initiate", {"clientId": client_ids["ios"], "email": email}
    )
    assert status == 429
    assert body["type"] == "urn:errors:too-many-requests"
    assert 1 <= int(headers["Retry-After"]) <= 900
    assert len(codes_sent_to(outbox, email)) == 5
    # Another person is not held back by this one's limit.
    initiate(client, client_ids["ios"], new_email())


def test_initiates_from_one_address_are_throttled_across_emails(
    client: Client,
    fresh_aws_stack: Bootstrap,
    partners: Partners,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every test client calls from one address: this test needs counters of its own.
    env = service_environment(fresh_aws_stack, partners_url=partners.url, database_url=database_url)
    for name, value in {**env, "SIGN_IN_LIMIT_PER_IP": "3"}.items():
        monkeypatch.setenv(name, value)
    settings.reset()
    aws.reset()
    client_ids = json.loads(env["APP_CLIENT_IDS"])
    for _ in range(3):
        initiate(client, client_ids["ios"], new_email())
    status, body, headers = post(
        client, "/user/auth/initiate", {"clientId": client_ids["ios"], "email": new_email()}
    )
    assert (status, body["type"]) == (429, "urn:errors:too-many-requests")
    assert "Retry-After" in headers


def test_the_answer_has_the_same_shape_for_new_and_existing_accounts(
    client: Client, client_ids: dict[str, str], outbox: Partners
) -> None:
    email = new_email()
    new_account = initiate(client, client_ids["ios"], email)
    existing_account = initiate(client, client_ids["ios"], email)
    assert set(new_account) == set(existing_account) == {"verificationId", "userId"}
    assert len(new_account["verificationId"]) == len(existing_account["verificationId"]) >= 43


def test_the_code_and_the_email_never_reach_the_logs(
    client: Client, client_ids: dict[str, str], outbox: Partners, capsys: pytest.CaptureFixture[str]
) -> None:
    email = new_email()
    started = initiate(client, client_ids["ios"], email)
    [code] = codes_sent_to(outbox, email)
    confirm(client, client_ids["ios"], email, wrong(code), started["verificationId"])
    status, _ = confirm(client, client_ids["ios"], email, code, started["verificationId"])
    assert status == 200
    logged = capsys.readouterr().out
    assert "sign-in code sent" in logged and "sign-in confirmed" in logged  # logs were captured
    assert code not in logged
    assert email not in logged and email.split("@")[0] not in logged


def test_an_account_with_an_authenticator_app_is_told_so_with_its_user_id(
    client: Client, client_ids: dict[str, str], outbox: Partners, service_env: dict[str, str]
) -> None:
    import boto3

    email = new_email()
    started = initiate(client, client_ids["ios"], email)
    [code] = codes_sent_to(outbox, email)
    _, signed_in = confirm(client, client_ids["ios"], email, code, started["verificationId"])
    cognito = boto3.client(
        "cognito-idp",
        region_name=service_env["AWS_REGION"],
        endpoint_url=service_env["AWS_ENDPOINT_URL"],
    )
    cognito.associate_software_token(AccessToken=signed_in["accessToken"])
    cognito.verify_software_token(AccessToken=signed_in["accessToken"], UserCode="123456")
    cognito.admin_set_user_mfa_preference(
        UserPoolId=service_env["USER_POOL_ID"],
        Username=email,
        SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
    )

    status, body, _ = post(
        client, "/user/auth/initiate", {"clientId": client_ids["ios"], "email": email}
    )
    assert status == 403
    assert body["type"] == "urn:errors:invalid-auth-mfa-enabled"
    assert body["userId"] == started["userId"]
