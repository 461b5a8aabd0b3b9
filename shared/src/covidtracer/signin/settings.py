"""Sign-in's knobs: ``SignInSettings`` (the details API's initiate/confirm) and ``AuthSettings``
(the trigger Lambdas of ``services/auth``)."""

from __future__ import annotations

from dataclasses import dataclass

from covidtracer import config
from covidtracer.config import Env, setting

COGNITO_GATEWAYS = ("aws", "local")


def _minutes_as_seconds(env: Env, name: str, default: int) -> int:
    """Cognito's AuthSessionValidity is set in minutes (3 to 15); the code counts seconds."""
    return 60 * env.integer(name, default // 60, minimum=3, maximum=15)


@dataclass(frozen=True, kw_only=True)
class SignInSettings:
    """Passwordless sign-in (DESIGN §2.1): which Cognito, how long a code lives, throttles."""

    # ``aws``: Cognito runs CUSTOM_AUTH and calls the trigger Lambdas. ``local``: the local
    # custom-auth driver runs the same triggers itself (moto runs no triggers).
    cognito_gateway: str = setting("COGNITO_GATEWAY", "aws", choices=COGNITO_GATEWAYS)
    # Under ``chalice local`` no API Gateway authorizer checks bearer tokens, so the app
    # verifies them itself; behind API Gateway the authorizer's claims are used.
    verify_tokens_in_app: bool = setting("VERIFY_TOKENS_IN_APP", False)
    # Cognito's AuthSessionValidity: how long one emailed code stays usable.
    session_validity_seconds: int = setting(
        "AUTH_SESSION_VALIDITY_MINUTES", 300, parse=_minutes_as_seconds
    )
    # Throttles on initiate: each sends an email, so they bound mail-bombing and guessing.
    limit_per_email: int = setting("SIGN_IN_LIMIT_PER_EMAIL", 5, minimum=1)
    limit_per_ip: int = setting("SIGN_IN_LIMIT_PER_IP", 30, minimum=1)
    limit_window_seconds: int = setting(
        "SIGN_IN_LIMIT_WINDOW_SECONDS", 900, minimum=1, maximum=86_400
    )
    # Initiate answers no faster than this whether or not the account existed, so its
    # timing does not tell a caller who has an account.
    initiate_min_duration_ms: int = setting(
        "SIGN_IN_MIN_DURATION_MS", 600, minimum=0, maximum=10_000
    )

    def check(self, env: Env) -> None:
        if env.stage != "local" and self.cognito_gateway == "local":
            # The local driver issues tokens through a password flow; only moto may see it.
            env.problems.append("COGNITO_GATEWAY=local is only for the local stage")


# After SignInSettings: covidtracer.settings imports it (DetailsSettings.sign_in), whichever
# of the two modules is imported first.
from covidtracer.settings import AwsServiceSettings, Tables  # noqa: E402


@dataclass(frozen=True, kw_only=True)
class AuthSettings(AwsServiceSettings):
    """The Cognito trigger Lambdas (``services/auth``)."""

    SERVICE = "auth"

    tables: Tables
    email_sender: str = setting("EMAIL_SENDER")
    post_authentication_queue_url: str = setting("POST_AUTHENTICATION_QUEUE_URL", url=True)

    def check(self, env: Env) -> None:
        if self.email_sender and "@" not in self.email_sender:
            env.problems.append("EMAIL_SENDER must be an email address")


auth_settings = config.cached(AuthSettings.from_env)
