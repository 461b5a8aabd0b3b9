"""Cognito custom-auth triggers for passwordless email sign-in (DESIGN §2.1).

Each Lambda hands Cognito's event to the matching use case in ``covidtracer.signin.triggers``
(with the production deps and the time) and returns it with its ``response`` filled in. The
deployment attaches the first five to the user pool and maps the post-authentication queue
to the last (with ``ReportBatchItemFailures``, since it answers SQS's partial-batch shape).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalice import Chalice  # type: ignore[attr-defined]

from covidtracer import logs, snapstart
from covidtracer.signin import triggers, wiring
from covidtracer.signin.triggers import TriggerDeps

logs.configure()
app = Chalice(app_name="covidtracer-auth")
app.debug = False
# SnapStart's init: what the first trigger would otherwise pay (covidtracer.snapstart).
snapstart.prepare(
    "covidtracer.signin.wiring:trigger_deps",
    "covidtracer.aws:ses",  # in the SES region
    imports=("pynamodb.models",),
    clients=("sqs",),  # DynamoDB is pynamodb's: prepare connects the tables the wiring bound
)

Event = dict[str, Any]


def _lambda(name: str, use_case: Callable[[TriggerDeps, Event, datetime], Any]) -> Any:
    """Registers the Lambda ``name``: its event goes to ``use_case`` with the deps and the time."""

    def handler(event: Event, context: Any) -> Any:
        return use_case(wiring.trigger_deps(), event, datetime.now(UTC))

    handler.__name__ = name  # Chalice's handler string is "app.<__name__>": the name below
    return app.lambda_function(name=name)(handler)


pre_sign_up = _lambda("pre_sign_up", triggers.pre_sign_up)
define_auth_challenge = _lambda("define_auth_challenge", triggers.define_auth_challenge)
create_auth_challenge = _lambda("create_auth_challenge", triggers.create_auth_challenge)
verify_auth_challenge_response = _lambda(
    "verify_auth_challenge_response", triggers.verify_auth_challenge_response
)
post_authentication = _lambda("post_authentication", triggers.post_authentication)
post_authentication_consumer = _lambda(
    "post_authentication_consumer", triggers.consume_post_authentication
)
