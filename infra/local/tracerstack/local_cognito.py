"""The local custom-auth driver: Cognito's CUSTOM_AUTH flow for a user pool in moto.

moto keeps users and mints real RS256 tokens, but runs no Lambda triggers and has no
CUSTOM_AUTH. This driver plays Cognito's part: it calls the same trigger use cases the auth
Lambdas run (``covidtracer.signin.triggers``), in Cognito's order and with Cognito's event
shapes, keeps the session server-side in DynamoDB behind an opaque session string (a new
one after each wrong answer, each valid for the session validity), and when
DefineAuthChallenge issues tokens it has moto mint them for the user (a fresh random
password and ADMIN_USER_PASSWORD_AUTH, which only this driver uses).

Reproduced: PreSignUp on account creation; Define → Create on initiate; Verify → Define
(→ Create on a retry) on each answer; the session list with challengeName, challengeResult
and challengeMetadata; privateChallengeParameters handed from Create to Verify; one answer
per session string; session expiry; failAuthentication ending the flow; PostAuthentication
after tokens; a software-token MFA account being asked for its MFA code.
Not reproduced: see ``LIMITATIONS``.

Dev-only: ``local_cognito`` is registered (infra/local/pyproject.toml) as the gateway
``COGNITO_GATEWAY=local`` selects (the local stage only), which ``covidtracer.signin.wiring``
looks up by that name; it ships in no package.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from covidtracer import aws, dynamo
from covidtracer.errors import InvalidAuthSession, Unavailable
from covidtracer.signin import triggers
from covidtracer.signin.cognito import (
    AwsCognito,
    CognitoUser,
    Retry,
    Tokens,
    cognito_errors,
    interpret,
    random_password,
)
from covidtracer.signin.model import CUSTOM_CHALLENGE

if TYPE_CHECKING:
    from covidtracer.contactdetails.settings import DetailsSettings

LIMITATIONS = (
    "Lambda timeouts and Cognito's 5-second trigger limit are not enforced",
    "a trigger exception surfaces as itself, not as UserLambdaValidationException",
    "clientMetadata, userContextData and device tracking are not passed to triggers",
    "tokens come from moto's password flow: no custom claims, moto's fixed signing key",
    "the user pool's ExplicitAuthFlows are not checked",
)

_SDK = "aws-sdk-unknown-unknown"

Event = dict[str, Any]
# Runs one trigger use case by name (``covidtracer.signin.triggers``) on an event.
TriggerRunner = Callable[[str, Event], Event]


def trigger_runner(deps: triggers.TriggerDeps) -> TriggerRunner:
    """The triggers as Cognito would invoke them: by name, at the current time."""

    def run(name: str, event: Event) -> Event:
        use_case: Callable[[triggers.TriggerDeps, Event, datetime], Event] = getattr(triggers, name)
        return use_case(deps, event, datetime.now(UTC))

    return run


def local_cognito(details: DetailsSettings) -> LocalCognito:
    """The driver for the details API's settings (``COGNITO_GATEWAY=local``)."""
    return LocalCognito(
        user_pool_id=details.user_pool_id,
        region=details.aws.region,
        sessions=DynamoLocalSessions(details.tables.sign_in_sessions),
        run_trigger=trigger_runner(auth_trigger_deps()),
        session_validity_seconds=details.sign_in.session_validity_seconds,
    )


def auth_trigger_deps() -> triggers.TriggerDeps:
    """The triggers' production deps, signing as the auth role when its credentials are
    given (else as this process: tests of shared code run as the administrator). In AWS
    the triggers run as the auth Lambdas, under the auth role, not as the API that started
    the sign-in; the local stack and the tests hand the details API the auth role's
    credentials for them (``tracerstack.environment.role_credentials``)."""
    import os

    from covidtracer.signin import wiring
    from tracerstack.environment import AUTH_TRIGGER_CREDENTIALS

    deps = wiring.trigger_deps()
    credentials = os.environ.get(AUTH_TRIGGER_CREDENTIALS)
    if not credentials:
        return deps
    from covidtracer.signin.messaging import SesCodeMailer, SqsPostAuthenticationQueue
    from covidtracer.signin.settings import auth_settings

    auth = auth_settings()
    session = _session(json.loads(credentials))
    return triggers.TriggerDeps(
        mailer=SesCodeMailer(auth.email_sender, _client(session, "ses", auth.aws.ses_region)),
        queue=SqsPostAuthenticationQueue(
            auth.post_authentication_queue_url, _client(session, "sqs", auth.aws.region)
        ),
        users=deps.users,
    )


def _session(credentials: dict[str, str]) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
    )


def _client(session: Any, service: str, region: str) -> Any:
    from covidtracer import settings

    return session.client(
        service,
        region_name=region,
        endpoint_url=settings.aws_settings().endpoint_url,
        config=aws.client_config(service),
    )


# ---------------------------------------------------------------------------- sessions

LOCAL_SESSION_PREFIX = "cognito-local#"


@dataclass(frozen=True)
class LocalSession:
    """What Cognito keeps behind one opaque session string of a CUSTOM_AUTH flow."""

    session_id: str
    username: str
    user_id: str
    client_id: str
    history: str  # JSON list of {challengeName, challengeResult, challengeMetadata}
    private_parameters: str  # JSON object from CreateAuthChallenge
    challenge_metadata: str  # of the pending challenge
    expires_at: int


class LocalSessionItem(Model):
    verificationId = UnicodeAttribute(hash_key=True)  # noqa: N815 - the table's key
    username = UnicodeAttribute()
    userId = UnicodeAttribute()  # noqa: N815
    clientId = UnicodeAttribute()  # noqa: N815
    history = UnicodeAttribute()
    privateParameters = UnicodeAttribute()  # noqa: N815
    challengeMetadata = UnicodeAttribute()  # noqa: N815
    expiresAt = NumberAttribute()  # noqa: N815 - TTL attribute


class DynamoLocalSessions:
    """The driver's Cognito sessions, as items of the sign-in table under their own key
    prefix: they must outlive one process, as Cognito's do."""

    def __init__(self, table_name: str) -> None:
        self._model = dynamo.bind(LocalSessionItem, table_name)

    def add(self, session: LocalSession) -> None:
        item = dynamo.item_of(
            self._model,
            session,
            omit={"session_id"},
            verificationId=LOCAL_SESSION_PREFIX + session.session_id,
        )
        try:
            item.save()
        except PynamoDBException as error:
            raise dynamo.unavailable("sign_in_sessions", error) from error

    def take(self, session_id: str) -> LocalSession | None:
        """Reads and deletes a session: each Cognito session string answers once."""
        key = LOCAL_SESSION_PREFIX + session_id
        item = dynamo.get_or_none(self._model, key, "sign_in_sessions")
        if item is None or not dynamo.delete_if_present(self._model, key, "sign_in_sessions"):
            return None  # none, or a concurrent answer took it first
        return dynamo.record_of(
            LocalSession, item, session_id=session_id, expires_at=int(item.expiresAt)
        )


# ---------------------------------------------------------------------------- the driver


class LocalCognito(AwsCognito):
    def __init__(
        self,
        user_pool_id: str,
        region: str,
        sessions: DynamoLocalSessions,
        run_trigger: TriggerRunner,
        session_validity_seconds: int,
        now: Callable[[], float] = time.time,
        new_session_id: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    ) -> None:
        super().__init__(user_pool_id)
        self._region = region
        self._sessions = sessions
        self._run = run_trigger
        self._validity = session_validity_seconds
        self._now = now
        self._new_session_id = new_session_id

    def _create_user(self, email: str) -> None:
        # Cognito runs PreSignUp (PreSignUp_AdminCreateUser) before AdminCreateUser creates.
        event = self._event(
            "PreSignUp_AdminCreateUser",
            email,
            "",
            {"userAttributes": {"email": email}, "validationData": None},
        )
        self._run("pre_sign_up", event)
        super()._create_user(email)

    def start_sign_in(self, user: CognitoUser, client_id: str) -> str:
        attributes = self.user_attributes(user.username)
        started = self._next(user.username, user.user_id, client_id, attributes, [])
        if not isinstance(started, str):
            raise Unavailable("cognito")  # DefineAuthChallenge never issues tokens unasked
        return started

    def answer(self, user_id: str, client_id: str, session: str, code: str) -> Tokens | Retry:
        pending = self._sessions.take(session)
        if pending is None or pending.client_id != client_id or pending.user_id != user_id:
            raise InvalidAuthSession  # Cognito: NotAuthorizedException, invalid session
        if pending.expires_at <= self._now():
            raise InvalidAuthSession  # Cognito: "Invalid session for the user, session is expired."
        attributes = self.user_attributes(pending.username)
        verified = self._run(
            "verify_auth_challenge_response",
            self._event(
                "VerifyAuthChallengeResponse_Authentication",
                pending.username,
                client_id,
                {
                    "userAttributes": attributes,
                    "privateChallengeParameters": json.loads(pending.private_parameters),
                    "challengeAnswer": code,
                    "userNotFound": False,
                },
                {"answerCorrect": None},
            ),
        )
        history = json.loads(pending.history)
        history.append(
            {
                "challengeName": CUSTOM_CHALLENGE,
                "challengeResult": verified["response"].get("answerCorrect") is True,
                "challengeMetadata": pending.challenge_metadata,
            }
        )
        next_session = self._next(pending.username, user_id, client_id, attributes, history)
        if isinstance(next_session, Tokens):
            return next_session
        return Retry(next_session)

    def _next(
        self,
        username: str,
        user_id: str,
        client_id: str,
        attributes: dict[str, str],
        history: list[dict[str, Any]],
    ) -> str | Tokens:
        """DefineAuthChallenge, then whatever it decided: tokens, failure, or a new challenge
        (CreateAuthChallenge) behind a new session string."""
        defined = self._run(
            "define_auth_challenge",
            self._event(
                "DefineAuthChallenge_Authentication",
                username,
                client_id,
                {"userAttributes": attributes, "session": history, "userNotFound": False},
            ),
        )["response"]
        if defined.get("failAuthentication"):
            raise InvalidAuthSession  # Cognito: NotAuthorizedException
        if defined.get("issueTokens"):
            return self._issue_tokens(username, user_id, client_id, attributes)
        if defined.get("challengeName") != CUSTOM_CHALLENGE:
            raise Unavailable("cognito")  # only custom challenges are configured
        created = self._run(
            "create_auth_challenge",
            self._event(
                "CreateAuthChallenge_Authentication",
                username,
                client_id,
                {
                    "userAttributes": attributes,
                    "challengeName": CUSTOM_CHALLENGE,
                    "session": history,
                    "userNotFound": False,
                },
                {
                    "publicChallengeParameters": {},
                    "privateChallengeParameters": {},
                    "challengeMetadata": "",
                },
            ),
        )["response"]
        session_id = self._new_session_id()
        self._sessions.add(
            LocalSession(
                session_id=session_id,
                username=username,
                user_id=user_id,
                client_id=client_id,
                history=json.dumps(history),
                private_parameters=json.dumps(created.get("privateChallengeParameters") or {}),
                challenge_metadata=str(created.get("challengeMetadata") or ""),
                expires_at=int(self._now()) + self._validity,
            )
        )
        return session_id

    def _issue_tokens(
        self, username: str, user_id: str, client_id: str, attributes: dict[str, str]
    ) -> Tokens:
        password = random_password()
        client = aws.cognito()
        with cognito_errors():
            client.admin_set_user_password(
                UserPoolId=self.user_pool_id, Username=username, Password=password, Permanent=True
            )
            answered = client.admin_initiate_auth(
                UserPoolId=self.user_pool_id,
                ClientId=client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            )
        tokens = interpret(answered, user_id)  # an MFA account is asked for its code: 403
        if not isinstance(tokens, Tokens):
            raise Unavailable("cognito")
        self._run(
            "post_authentication",
            self._event(
                "PostAuthentication_Authentication",
                username,
                client_id,
                {"userAttributes": attributes, "newDeviceUsed": False},
            ),
        )
        return tokens

    def _event(
        self,
        trigger_source: str,
        username: str,
        client_id: str,
        request: dict[str, Any],
        response: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The common envelope of every Cognito user-pool trigger event."""
        return {
            "version": "1",
            "region": self._region,
            "userPoolId": self.user_pool_id,
            "userName": username,
            "callerContext": {
                "awsSdkVersion": _SDK,
                "clientId": client_id or "CLIENT_ID_NOT_APPLICABLE",
            },
            "triggerSource": trigger_source,
            "request": request,
            "response": response if response is not None else {},
        }
