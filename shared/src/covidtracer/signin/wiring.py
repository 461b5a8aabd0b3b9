"""The production dependencies of sign-in, built from settings once per execution environment.

The token verifier is ``tokens.verifier()``, beside the check that uses it, so the caller
check reaches no other part of sign-in.

``COGNITO_GATEWAY`` selects the Cognito gateway (DESIGN §2.1): ``aws`` is built in; any
other name is a factory that an installed package registers under the entry-point group
``GATEWAY_PLUGINS``. The local stack's package registers ``local`` (allowed in the local stage
only), so this code names no dev-only module and no package build follows one from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidtracer import config

# Entry points (https://packaging.python.org/en/latest/specifications/entry-points/): a name
# in this group is a COGNITO_GATEWAY value, its object a factory taking DetailsSettings.
GATEWAY_PLUGINS = "covidtracer.cognito_gateways"

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
    """The configured gateway; ``config.SettingsError`` when no installed package has it."""
    name = details.sign_in.cognito_gateway
    if name == "aws":
        from covidtracer.signin.cognito import AwsCognito

        return AwsCognito(details.user_pool_id)
    from importlib.metadata import entry_points

    registered = entry_points(group=GATEWAY_PLUGINS, name=name)
    if not registered:
        problem = f"COGNITO_GATEWAY={name}: no installed package provides that gateway"
        raise config.SettingsError("details", [problem])
    (plugin,) = registered
    gateway: CognitoGateway = plugin.load()(details)
    return gateway
