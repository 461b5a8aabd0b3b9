"""The production dependencies of sign-in, built from settings once per execution environment.

The token verifier is ``tokens.verifier()``, beside the check that uses it, so the caller
check reaches no other part of sign-in.

``COGNITO_GATEWAY=local`` (allowed in the local stage only) wires the dev-only driver
``tracerstack.local_cognito``, imported here and only then: it ships in no package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidtracer import config

if TYPE_CHECKING:
    # Only a type: the auth app, which ships sign-in for its triggers, has no contact details.
    from covidtracer.contactdetails.settings import DetailsSettings
    from covidtracer.signin.cognito import CognitoGateway
    from covidtracer.signin.service import SignInDeps
    from covidtracer.signin.triggers import TriggerDeps


def sign_in_deps(details: DetailsSettings) -> SignInDeps:
    """Initiate/confirm wired to Cognito (or the local driver) and DynamoDB, from the details
    API's settings (the API caches what this builds)."""
    from covidtracer.ratelimit.wiring import dynamo_counters
    from covidtracer.signin.repository import DynamoSignInRecords
    from covidtracer.signin.service import SignInDeps

    return SignInDeps(
        gateway=_gateway(details),
        records=DynamoSignInRecords(details.tables.sign_in_sessions),
        counters=dynamo_counters(details.tables.rate_limits),
        config=details.sign_in,
        client_ids=frozenset(details.app_client_ids.values()),
        stage=details.stage,
    )


@config.cached
def trigger_deps() -> TriggerDeps:
    """The triggers wired to SES, SQS and DynamoDB from the auth settings."""
    from covidtracer.signin.messaging import SesCodeMailer, SqsPostAuthenticationQueue
    from covidtracer.signin.repository import DynamoUsers
    from covidtracer.signin.settings import auth_settings
    from covidtracer.signin.triggers import TriggerDeps

    auth = auth_settings()
    return TriggerDeps(
        mailer=SesCodeMailer(auth.email_sender),
        queue=SqsPostAuthenticationQueue(auth.post_authentication_queue_url),
        users=DynamoUsers(auth.tables.users),
    )


def _gateway(details: DetailsSettings) -> CognitoGateway:
    if details.sign_in.cognito_gateway == "aws":
        from covidtracer.signin.cognito import AwsCognito

        return AwsCognito(details.user_pool_id)
    # The settings refuse COGNITO_GATEWAY=local outside the local stage, where the local
    # stack's package is installed; named by string, so no package build follows it.
    import importlib

    driver = importlib.import_module("tracerstack.local_cognito")
    gateway: CognitoGateway = driver.local_cognito(details)
    return gateway
