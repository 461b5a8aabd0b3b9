"""The Cognito triggers, driven with the event shapes Cognito sends (samples from the
Cognito developer guide), with in-memory fakes for SES, SQS and the Users table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from covidtracer.signin import triggers as use_cases
from covidtracer.signin.events import PostAuthenticationMessage
from covidtracer.signin.triggers import RejectedSignUp, TriggerDeps
from tracerstack.samples import COGNITO_COMMON, COGNITO_USER_SUB
from tracerstack.samples import cognito_trigger_event as event

ATTRIBUTES = {
    "sub": COGNITO_USER_SUB,
    "email_verified": "true",
    "cognito:user_status": "CONFIRMED",
    "email": "aroha@example.nz",
}


def define_event(session: list[dict[str, Any]], user_not_found: bool = False) -> dict[str, Any]:
    return event(
        "DefineAuthChallenge_Authentication",
        {"userAttributes": ATTRIBUTES, "session": session, "userNotFound": user_not_found},
        {"challengeName": None, "issueTokens": None, "failAuthentication": None},
    )


def create_event(session: list[dict[str, Any]]) -> dict[str, Any]:
    return event(
        "CreateAuthChallenge_Authentication",
        {
            "userAttributes": ATTRIBUTES,
            "challengeName": "CUSTOM_CHALLENGE",
            "session": session,
            "userNotFound": False,
        },
        {
            "publicChallengeParameters": {},
            "privateChallengeParameters": {},
            "challengeMetadata": "",
        },
    )


def verify_event(private: dict[str, str], answer: Any) -> dict[str, Any]:
    return event(
        "VerifyAuthChallengeResponse_Authentication",
        {
            "userAttributes": ATTRIBUTES,
            "privateChallengeParameters": private,
            "challengeAnswer": answer,
            "userNotFound": False,
        },
        {"answerCorrect": None},
    )


def entry(result: bool, metadata: str = "CODE-042042") -> dict[str, Any]:
    return {
        "challengeName": "CUSTOM_CHALLENGE",
        "challengeResult": result,
        "challengeMetadata": metadata,
    }


class Fakes:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.published: list[PostAuthenticationMessage] = []
        self.users: dict[str, tuple[str, str]] = {}

    def send_code(self, to: str, code: str) -> None:
        self.sent.append((to, code))

    def publish(self, message: PostAuthenticationMessage) -> None:
        self.published.append(message)

    def record_sign_in(self, user_id: str, email: str, at: str) -> None:
        if email == "boom@example.nz":
            raise ConnectionError("table unavailable")
        self.users[user_id] = (email, at)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


NOW = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)


class AuthTriggers:
    """The trigger use cases bound to their deps, called as the Lambdas call them."""

    def __init__(self, deps: TriggerDeps) -> None:
        self.deps = deps

    def __getattr__(self, name: str) -> Any:
        use_case = getattr(use_cases, name)
        return lambda raw: use_case(self.deps, raw, NOW)


@pytest.fixture
def triggers(fakes: Fakes) -> AuthTriggers:
    return AuthTriggers(
        TriggerDeps(mailer=fakes, queue=fakes, users=fakes, randbelow=lambda _n: 42042)
    )


def test_pre_sign_up_confirms_the_account_and_verifies_its_email(triggers: AuthTriggers) -> None:
    raw = event(
        "PreSignUp_AdminCreateUser",
        {"userAttributes": {"email": "aroha@example.nz"}, "validationData": None},
        {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False},
    )
    answered = triggers.pre_sign_up(raw)
    assert answered["response"] == {
        "autoConfirmUser": True,
        "autoVerifyEmail": True,
        "autoVerifyPhone": False,
    }
    assert answered["userPoolId"] == COGNITO_COMMON["userPoolId"]  # the rest goes back unchanged


@pytest.mark.parametrize("attributes", [{}, {"email": "not-an-email"}, {"phone_number": "+6421"}])
def test_pre_sign_up_rejects_an_account_without_an_email(
    triggers: AuthTriggers, attributes: dict[str, str]
) -> None:
    raw = event("PreSignUp_SignUp", {"userAttributes": attributes}, {})
    with pytest.raises(RejectedSignUp):
        triggers.pre_sign_up(raw)


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        (
            [],
            {
                "challengeName": "CUSTOM_CHALLENGE",
                "issueTokens": False,
                "failAuthentication": False,
            },
        ),
        (
            [entry(False)],
            {
                "challengeName": "CUSTOM_CHALLENGE",
                "issueTokens": False,
                "failAuthentication": False,
            },
        ),
        ([entry(False), entry(True)], {"issueTokens": True, "failAuthentication": False}),
        ([entry(False)] * 3, {"issueTokens": False, "failAuthentication": True}),
        (
            [{"challengeName": "SRP_A", "challengeResult": True, "challengeMetadata": None}],
            {"issueTokens": False, "failAuthentication": True},
        ),
    ],
)
def test_define_auth_challenge(
    triggers: AuthTriggers, session: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    assert triggers.define_auth_challenge(define_event(session))["response"] == expected


def test_define_auth_challenge_fails_an_unknown_user(triggers: AuthTriggers) -> None:
    response = triggers.define_auth_challenge(define_event([], user_not_found=True))["response"]
    assert response["failAuthentication"] is True and response["issueTokens"] is False


def test_the_first_challenge_makes_a_code_and_emails_it(
    triggers: AuthTriggers, fakes: Fakes
) -> None:
    response = triggers.create_auth_challenge(create_event([]))["response"]
    assert fakes.sent == [("aroha@example.nz", "042042")]
    assert response["privateChallengeParameters"] == {"code": "042042"}
    assert response["challengeMetadata"] == "CODE-042042"
    assert response["publicChallengeParameters"] == {"email": "a***@example.nz"}


def test_a_retry_in_the_same_session_reuses_the_code_and_sends_nothing(
    fakes: Fakes,
) -> None:
    triggers = AuthTriggers(TriggerDeps(fakes, fakes, fakes, randbelow=lambda _n: 999_999))
    response = triggers.create_auth_challenge(create_event([entry(False, "CODE-123123")]))
    assert response["response"]["privateChallengeParameters"] == {"code": "123123"}
    assert response["response"]["challengeMetadata"] == "CODE-123123"
    assert fakes.sent == []


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("042042", True),
        ("042043", False),
        ("", False),
        (None, False),
        (42042, False),
        ("42042", False),
    ],
)
def test_verify_auth_challenge_response_compares_the_answer(
    triggers: AuthTriggers, answer: Any, correct: bool
) -> None:
    raw = verify_event({"code": "042042"}, answer)
    assert triggers.verify_auth_challenge_response(raw)["response"] == {"answerCorrect": correct}


def test_verify_never_accepts_when_no_code_was_set(triggers: AuthTriggers) -> None:
    raw = verify_event({}, "")
    assert triggers.verify_auth_challenge_response(raw)["response"] == {"answerCorrect": False}


def test_post_authentication_queues_the_users_upsert(triggers: AuthTriggers, fakes: Fakes) -> None:
    raw = event(
        "PostAuthentication_Authentication",
        {"userAttributes": ATTRIBUTES, "newDeviceUsed": False},
        {},
    )
    assert triggers.post_authentication(raw)["response"] == {}
    assert fakes.published == [
        PostAuthenticationMessage(ATTRIBUTES["sub"], "aroha@example.nz", "2026-03-04T05:06:07.890Z")
    ]


def test_the_consumer_upserts_users_and_reports_only_failed_messages(
    triggers: AuthTriggers, fakes: Fakes
) -> None:
    def record(message_id: str, body: str) -> dict[str, Any]:
        return {
            "messageId": message_id,
            "receiptHandle": "AQEB…",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:ap-southeast-2:123456789012:post-authentication",
            "awsRegion": "ap-southeast-2",
        }

    good = PostAuthenticationMessage("u-1", "a@example.nz", "2026-03-04T05:06:07.890Z").to_json()
    failing = json.dumps(
        {"userId": "u-2", "email": "boom@example.nz", "at": "2026-03-04T05:06:08Z"}
    )
    answer = triggers.consume_post_authentication(
        {
            "Records": [
                record("m1", good),
                record("m2", "not json"),
                record("m3", "{}"),
                record("m4", failing),
            ]
        }
    )
    assert answer == {
        "batchItemFailures": [
            {"itemIdentifier": "m2"},
            {"itemIdentifier": "m3"},
            {"itemIdentifier": "m4"},
        ]
    }
    assert fakes.users == {"u-1": ("a@example.nz", "2026-03-04T05:06:07.890Z")}


def test_no_trigger_logs_the_code_or_the_address(
    triggers: AuthTriggers, capsys: pytest.CaptureFixture[str]
) -> None:
    from covidtracer import logs

    logs.configure()
    created = triggers.create_auth_challenge(create_event([]))
    triggers.verify_auth_challenge_response(
        verify_event(created["response"]["privateChallengeParameters"], "042042")
    )
    triggers.define_auth_challenge(define_event([entry(True)]))
    out = capsys.readouterr().out
    assert "sign-in code sent" in out
    assert "042042" not in out and "aroha" not in out
