"""Cognito custom-auth triggers for passwordless email sign-in (DESIGN §2.1).

Each Lambda hands Cognito's event to the matching use case in ``covidtracer.auth.triggers``
and returns it with its ``response`` filled in. The deployment attaches the first five to
the user pool and maps the post-authentication queue to the last (with
``ReportBatchItemFailures``, since it answers SQS's partial-batch shape).
"""

from __future__ import annotations

from typing import Any

from chalice import Chalice  # type: ignore[attr-defined]

from covidtracer import logs
from covidtracer.auth import triggers
from covidtracer.http import send_analytics_after_each_invocation

logs.configure()
app = Chalice(app_name="covidtracer-auth")
app.debug = False
# The triggers are on a sign-in's critical path: their events are sent, never waited for.
send_analytics_after_each_invocation(app, wait_at_end=False)

Event = dict[str, Any]


@app.lambda_function(name="pre_sign_up")
def pre_sign_up(event: Event, context: Any) -> Event:
    return triggers.default().pre_sign_up(event)


@app.lambda_function(name="define_auth_challenge")
def define_auth_challenge(event: Event, context: Any) -> Event:
    return triggers.default().define_auth_challenge(event)


@app.lambda_function(name="create_auth_challenge")
def create_auth_challenge(event: Event, context: Any) -> Event:
    return triggers.default().create_auth_challenge(event)


@app.lambda_function(name="verify_auth_challenge_response")
def verify_auth_challenge_response(event: Event, context: Any) -> Event:
    return triggers.default().verify_auth_challenge_response(event)


@app.lambda_function(name="post_authentication")
def post_authentication(event: Event, context: Any) -> Event:
    return triggers.default().post_authentication(event)


@app.lambda_function(name="post_authentication_consumer")
def post_authentication_consumer(event: Event, context: Any) -> dict[str, Any]:
    return triggers.default().consume_post_authentication(event)
