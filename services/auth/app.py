"""Cognito custom-auth triggers for passwordless email sign-in (DESIGN §2.1).

Each Lambda hands Cognito's event to the matching use case in ``covidtracer.signin.triggers``
(with the production deps and the time) and returns it with its ``response`` filled in. The
deployment attaches the first five to the user pool and maps the post-authentication queue
to the last (with ``ReportBatchItemFailures``, since it answers SQS's partial-batch shape).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalice import Chalice  # type: ignore[attr-defined]

from covidtracer import logs
from covidtracer.http import send_analytics_after_each_invocation
from covidtracer.signin import triggers, wiring

logs.configure()
app = Chalice(app_name="covidtracer-auth")
app.debug = False
# The triggers are on a sign-in's critical path: their events are sent, never waited for.
send_analytics_after_each_invocation(app, wait_at_end=False)

Event = dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


@app.lambda_function(name="pre_sign_up")
def pre_sign_up(event: Event, context: Any) -> Event:
    return triggers.pre_sign_up(wiring.trigger_deps(), event, _now())


@app.lambda_function(name="define_auth_challenge")
def define_auth_challenge(event: Event, context: Any) -> Event:
    return triggers.define_auth_challenge(wiring.trigger_deps(), event, _now())


@app.lambda_function(name="create_auth_challenge")
def create_auth_challenge(event: Event, context: Any) -> Event:
    return triggers.create_auth_challenge(wiring.trigger_deps(), event, _now())


@app.lambda_function(name="verify_auth_challenge_response")
def verify_auth_challenge_response(event: Event, context: Any) -> Event:
    return triggers.verify_auth_challenge_response(wiring.trigger_deps(), event, _now())


@app.lambda_function(name="post_authentication")
def post_authentication(event: Event, context: Any) -> Event:
    return triggers.post_authentication(wiring.trigger_deps(), event, _now())


@app.lambda_function(name="post_authentication_consumer")
def post_authentication_consumer(event: Event, context: Any) -> dict[str, Any]:
    return triggers.consume_post_authentication(wiring.trigger_deps(), event, _now())
