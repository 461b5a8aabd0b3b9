"""Sign-in's knobs: ``SignInSettings`` (the details API's initiate/confirm) and ``AuthSettings``
(the trigger Lambdas of ``services/auth``)."""

from __future__ import annotations

from dataclasses import dataclass

from covidtracer import config
from covidtracer.config import Env, setting
from covidtracer.settings import AwsServiceSettings, Tables

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
    # Throttles on initiate (each emails a code; docs/operations.md §10 has the arithmetic).
    # Per email *from one address*: the app's "resend code" (CLIENTS.md: the 6th initiate for
    # one email gets 429 with Retry-After); someone typing a person's email elsewhere counts
    # against their own address, never the person's. There is no per-address limit across
    # emails: thousands of people share a carrier NAT address, and the edge's rate rule
    # bounds what one address sends.
    limit_per_email: int = setting("SIGN_IN_LIMIT_PER_EMAIL", 5, minimum=1)
    limit_window_seconds: int = setting(
        "SIGN_IN_LIMIT_WINDOW_SECONDS", 900, minimum=1, maximum=86_400
    )
    # Initiates for one email from *other* addresses, this many in the window, mean it may
    # be targeted (guessing its codes, or filling its inbox): then each address may start
    # only ``guarded_per_day`` sign-ins for that email a day. A person's own address gets
    # them too, so a targeted person still signs in (one who changes networks mid sign-in
    # has three a day there), and sessions beyond the one address's five a window grow with
    # the attacker's addresses by 3 a day each, never without bound.
    email_guard_after: int = setting("SIGN_IN_EMAIL_GUARD_AFTER", 1, minimum=1)
    guarded_per_day: int = setting("SIGN_IN_GUARDED_PER_DAY", 3, minimum=1)
    # Initiate answers no faster than this whether or not the account existed, so its
    # timing does not tell a caller who has an account.
    initiate_min_duration_ms: int = setting(
        "SIGN_IN_MIN_DURATION_MS", 600, minimum=0, maximum=10_000
    )

    def check(self, env: Env) -> None:
        if env.stage != "local" and self.cognito_gateway == "local":
            # The local driver issues tokens through a password flow; only moto may see it.
            env.problems.append("COGNITO_GATEWAY=local is only for the local stage")


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
