"""The Cognito gateway of sign-in: one small interface, two implementations.

- ``AwsCognito`` (``COGNITO_GATEWAY=aws``): the real user pool runs CUSTOM_AUTH and calls
  the trigger Lambdas of ``services/auth``.
- ``LocalCognito`` (``COGNITO_GATEWAY=local``, the dev-only ``tracerstack.local_cognito``):
  moto runs no triggers, so a driver runs ours in Cognito's order and then has moto mint the
  tokens.

Both translate Cognito's answers into domain results and errors: an expired, exhausted or
unknown session is ``InvalidAuthSession``; an account that needs its authenticator app is
``MfaEnabled``; input Cognito refuses (``InvalidParameterException``: an address our rule
accepts but the pool's does not) is a ``ValidationError`` on ``Email``, never a 503 that
tells the phone to retry what can never work; anything else that fails is
``Unavailable("cognito")``.
"""

from __future__ import annotations

import contextlib
import secrets
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from covidtracer import aws
from covidtracer.errors import (
    DomainError,
    InvalidAuthSession,
    MfaEnabled,
    Unavailable,
    ValidationError,
)
from covidtracer.signin.model import CUSTOM_CHALLENGE

SOFTWARE_TOKEN_MFA = "SOFTWARE_TOKEN_MFA"  # noqa: S105 - a challenge name
# Cognito's answers for a session that is expired, exhausted (failAuthentication) or forged.
_SESSION_ERRORS = frozenset(
    {
        "NotAuthorizedException",
        "CodeMismatchException",
        "ExpiredCodeException",
        "UserNotFoundException",
    }
)
# Cognito's answer for a parameter it will not take: the caller's input, not an outage.
_INPUT_ERRORS = frozenset({"InvalidParameterException"})


def email_refused() -> DomainError:
    return ValidationError.of("Email", "The email address is not accepted.")


@dataclass(frozen=True)
class CognitoUser:
    username: str
    user_id: str  # the ``sub``: the app's userId forever
    mfa_enabled: bool


@dataclass(frozen=True)
class Tokens:
    access_token: str


@dataclass(frozen=True)
class Retry:
    """A wrong answer with attempts left; Cognito's new session string for the next one."""

    session: str


class CognitoGateway(Protocol):
    def find_or_create_user(self, email: str) -> CognitoUser:
        """The account for ``email`` (normalised), created confirmed and verified if new."""

    def start_sign_in(self, user: CognitoUser, client_id: str) -> str:
        """Starts CUSTOM_AUTH (the code is emailed); returns Cognito's session string."""

    def answer(self, user_id: str, client_id: str, session: str, code: str) -> Tokens | Retry:
        """Answers the pending code challenge. Raises InvalidAuthSession (expired, exhausted,
        unknown session) or MfaEnabled."""


@contextlib.contextmanager
def cognito_errors(refused: Callable[[], DomainError] = email_refused) -> Iterator[None]:
    """Translates botocore errors from Cognito calls into domain errors; input Cognito
    refuses becomes ``refused()``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in _SESSION_ERRORS:
            raise InvalidAuthSession from exc
        if code in _INPUT_ERRORS:
            raise refused() from exc
        raise Unavailable("cognito") from exc
    except BotoCoreError as exc:
        raise Unavailable("cognito") from exc


def random_password() -> str:
    """A throwaway password meeting any pool policy: accounts are created CONFIRMED with one
    nobody knows (no password flow is enabled on the app clients)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(40)) + "aA1!"


class AwsCognito:
    """Admin calls against the user pool (the details API's role may call them)."""

    def __init__(self, user_pool_id: str) -> None:
        self.user_pool_id = user_pool_id

    # ------------------------------------------------------------------ accounts

    def find_or_create_user(self, email: str) -> CognitoUser:
        user = self._get_user(email)
        if user is None:
            self._create_user(email)
            user = self._get_user(email)
            if user is None:
                raise Unavailable("cognito")
        return user

    def _get_user(self, username: str) -> CognitoUser | None:
        from botocore.exceptions import ClientError

        try:
            with _raw_cognito_errors():
                found = aws.cognito().admin_get_user(
                    UserPoolId=self.user_pool_id, Username=username
                )
        except ClientError as exc:
            if aws.error_code(exc) == "UserNotFoundException":
                return None
            if aws.error_code(exc) in _INPUT_ERRORS:
                raise email_refused() from exc
            raise Unavailable("cognito") from exc
        attributes = {a["Name"]: a.get("Value", "") for a in found.get("UserAttributes", [])}
        mfa = SOFTWARE_TOKEN_MFA in (found.get("UserMFASettingList") or []) or (
            found.get("PreferredMfaSetting") == SOFTWARE_TOKEN_MFA
        )
        return CognitoUser(found["Username"], attributes.get("sub", ""), mfa)

    def user_attributes(self, username: str) -> dict[str, str]:
        with cognito_errors():
            found = aws.cognito().admin_get_user(UserPoolId=self.user_pool_id, Username=username)
        return {a["Name"]: a.get("Value", "") for a in found.get("UserAttributes", [])}

    def _create_user(self, email: str) -> None:
        """Creates the account confirmed, email verified, with no invitation sent. A
        concurrent first sign-in may create it first; that is fine."""
        from botocore.exceptions import ClientError

        client = aws.cognito()
        try:
            with _raw_cognito_errors():
                created = client.admin_create_user(
                    UserPoolId=self.user_pool_id,
                    Username=email,
                    UserAttributes=[
                        {"Name": "email", "Value": email},
                        {"Name": "email_verified", "Value": "true"},
                    ],
                    MessageAction="SUPPRESS",
                )
        except ClientError as exc:
            if aws.error_code(exc) == "UsernameExistsException":
                return
            if aws.error_code(exc) in _INPUT_ERRORS:
                raise email_refused() from exc
            raise Unavailable("cognito") from exc
        # FORCE_CHANGE_PASSWORD -> CONFIRMED: a password nobody knows.
        with cognito_errors():
            client.admin_set_user_password(
                UserPoolId=self.user_pool_id,
                Username=created["User"]["Username"],
                Password=random_password(),
                Permanent=True,
            )

    # ------------------------------------------------------------------ custom auth

    def start_sign_in(self, user: CognitoUser, client_id: str) -> str:
        with cognito_errors():
            started = aws.cognito().admin_initiate_auth(
                UserPoolId=self.user_pool_id,
                ClientId=client_id,
                AuthFlow="CUSTOM_AUTH",
                AuthParameters={"USERNAME": user.username},
            )
        if started.get("ChallengeName") != CUSTOM_CHALLENGE or not started.get("Session"):
            raise Unavailable("cognito")
        return started["Session"]

    def answer(self, user_id: str, client_id: str, session: str, code: str) -> Tokens | Retry:
        with cognito_errors(refused=InvalidAuthSession):
            answered = aws.cognito().admin_respond_to_auth_challenge(
                UserPoolId=self.user_pool_id,
                ClientId=client_id,
                ChallengeName="CUSTOM_CHALLENGE",
                ChallengeResponses={"USERNAME": user_id, "ANSWER": code},
                Session=session,
            )
        return interpret(answered, user_id)


def interpret(answered: Mapping[str, Any], user_id: str) -> Tokens | Retry:
    """Cognito's reply to an answer (or to a password flow) as a domain result."""
    result = answered.get("AuthenticationResult")
    if result and result.get("AccessToken"):
        return Tokens(result["AccessToken"])
    challenge = answered.get("ChallengeName")
    if challenge == SOFTWARE_TOKEN_MFA:
        raise MfaEnabled(user_id)
    if challenge == CUSTOM_CHALLENGE and answered.get("Session"):
        return Retry(answered["Session"])
    raise Unavailable("cognito")


@contextlib.contextmanager
def _raw_cognito_errors() -> Iterator[None]:
    """Lets ClientError through for the caller to inspect; other failures are Unavailable."""
    from botocore.exceptions import BotoCoreError

    try:
        yield
    except BotoCoreError as exc:
        raise Unavailable("cognito") from exc
