"""The Cognito custom-auth triggers of passwordless sign-in (DESIGN §2.1), as use cases.

Each takes ``(deps, event, now)``: the event dict Cognito sends, returned with its
``response`` filled in, exactly as the Lambda returns it. ``services/auth`` exposes them as
Lambdas; the local Cognito driver (``tracerstack.local_cognito``) calls the very same
functions.

The code is never logged: events carry it (private parameters, metadata, the answer), so
no event is ever logged either.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from covidtracer import logs
from covidtracer.analytics.emitter import emit
from covidtracer.signin import model
from covidtracer.signin.events import (
    CreateAuthChallengeEvent,
    DefineAuthChallengeEvent,
    PostAuthenticationEvent,
    PostAuthenticationMessage,
    PreSignUpEvent,
    VerifyAuthChallengeResponseEvent,
    sqs_records,
)
from covidtracer.validation import format_utc_millis

if TYPE_CHECKING:
    from covidtracer.signin.messaging import CodeMailer, PostAuthenticationQueue
    from covidtracer.signin.repository import Users

log = logs.get_logger(__name__)

Event = dict[str, Any]


@dataclass(frozen=True)
class TriggerDeps:
    """What the triggers need: the code email, the post-authentication queue, the ``Users``
    table, and the CSPRNG codes come from."""

    mailer: CodeMailer
    queue: PostAuthenticationQueue
    users: Users
    randbelow: Callable[[int], int] = secrets.randbelow


class RejectedSignUp(ValueError):
    """PreSignUp refuses the account; Cognito answers UserLambdaValidationException."""


def pre_sign_up(deps: TriggerDeps, raw: Event, now: datetime) -> Event:
    """Confirms the account and marks its email verified; refuses a non-email account
    (raises RejectedSignUp, which Cognito turns into a failed sign-up)."""
    event = PreSignUpEvent(raw)
    if model.normalise_email(event.email) is None:
        raise RejectedSignUp("An account needs a valid email address.")
    event.confirm(auto_confirm=True, verify_email=True)
    emit("account_created")
    return raw


def define_auth_challenge(deps: TriggerDeps, raw: Event, now: datetime) -> Event:
    event = DefineAuthChallengeEvent(raw)
    step = model.next_step(event.session, event.user_not_found)
    event.decide(issue_tokens=step.issue_tokens, fail=step.fail, challenge_name=step.challenge_name)
    log.info(
        "sign-in challenge decided",
        extra={"answers": len(event.session), "issue_tokens": step.issue_tokens, "fail": step.fail},
    )
    if step.fail:
        emit("sign_in_failed")
    return raw


def create_auth_challenge(deps: TriggerDeps, raw: Event, now: datetime) -> Event:
    """The first challenge of a session makes a code and emails it; retries in the same
    session reuse it (from the session's challenge metadata) and send nothing."""
    event = CreateAuthChallengeEvent(raw)
    code = model.code_from_session(event.session)
    if code is None:
        code = model.new_code(deps.randbelow)
        if event.user_not_found or not event.email:
            # Nothing to send to; the answer can never be right.
            log.info("sign-in challenge for an unknown user")
        else:
            deps.mailer.send_code(event.email, code)
            log.info("sign-in code sent")
            emit("sign_in_code_sent")
    event.present(
        public={"email": model.masked(event.email)},
        private={"code": code},
        metadata=model.code_metadata(code),
    )
    return raw


def verify_auth_challenge_response(deps: TriggerDeps, raw: Event, now: datetime) -> Event:
    event = VerifyAuthChallengeResponseEvent(raw)
    expected = event.private_challenge_parameters.get("code", "")
    correct = bool(expected) and model.codes_match(expected, event.challenge_answer)
    event.answer(correct)
    return raw


def post_authentication(deps: TriggerDeps, raw: Event, now: datetime) -> Event:
    """Queues the ``Users`` upsert; the sign-in never waits on that work."""
    event = PostAuthenticationEvent(raw)
    at = format_utc_millis(now)
    deps.queue.publish(PostAuthenticationMessage(event.sub, event.email, at))
    emit("sign_in_succeeded")
    return raw


def consume_post_authentication(
    deps: TriggerDeps, event: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Upserts one ``Users`` row per message; answers the SQS partial-batch shape, so
    only failed messages are retried (and reach the DLQ after five receives)."""
    failures = []
    for record in sqs_records(event):
        try:
            message = PostAuthenticationMessage.from_json(record.body)
            deps.users.record_sign_in(message.user_id, message.email, message.at)
        except Exception as exc:
            log.warning(
                "post-authentication message failed",
                extra={"message_id": record.message_id, "error_type": type(exc).__name__},
            )
            failures.append({"itemIdentifier": record.message_id})
    return {"batchItemFailures": failures}
