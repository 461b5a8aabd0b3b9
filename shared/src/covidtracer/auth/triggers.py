"""The Cognito custom-auth triggers of passwordless sign-in (DESIGN §2.1), as use cases.

Each method takes the event dict Cognito sends and returns it with ``response`` filled in,
exactly as the Lambda returns it. ``services/auth`` exposes them as Lambdas; the local
Cognito driver (``covidtracer.auth.local_cognito``) calls the very same methods.

The code is never logged: events carry it (private parameters, metadata, the answer), so
no event is ever logged either.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from covidtracer import logs, settings
from covidtracer.analytics.emitter import emit
from covidtracer.auth import model
from covidtracer.auth.events import (
    CreateAuthChallengeEvent,
    DefineAuthChallengeEvent,
    PostAuthenticationEvent,
    PostAuthenticationMessage,
    PreSignUpEvent,
    VerifyAuthChallengeResponseEvent,
    sqs_records,
)
from covidtracer.auth.messaging import CodeMailer, PostAuthenticationQueue

log = logs.get_logger(__name__)

Event = dict[str, Any]


class SignInUsers(Protocol):
    def record_sign_in(self, user_id: str, email: str, at: str) -> None: ...


class RejectedSignUp(ValueError):
    """PreSignUp refuses the account; Cognito answers UserLambdaValidationException."""


class AuthTriggers:
    def __init__(
        self,
        mailer: CodeMailer,
        queue: PostAuthenticationQueue,
        users: SignInUsers,
        randbelow: Callable[[int], int] = secrets.randbelow,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._mailer = mailer
        self._queue = queue
        self._users = users
        self._randbelow = randbelow
        self._now = now

    def pre_sign_up(self, raw: Event) -> Event:
        """Confirms the account and marks its email verified; refuses a non-email account
        (raises RejectedSignUp, which Cognito turns into a failed sign-up)."""
        event = PreSignUpEvent(raw)
        if model.normalise_email(event.email) is None:
            raise RejectedSignUp("An account needs a valid email address.")
        event.confirm(auto_confirm=True, verify_email=True)
        emit("account_created")
        return raw

    def define_auth_challenge(self, raw: Event) -> Event:
        event = DefineAuthChallengeEvent(raw)
        step = model.next_step(event.session, event.user_not_found)
        event.decide(
            issue_tokens=step.issue_tokens, fail=step.fail, challenge_name=step.challenge_name
        )
        log.info(
            "sign-in challenge decided",
            extra={
                "answers": len(event.session),
                "issue_tokens": step.issue_tokens,
                "fail": step.fail,
            },
        )
        if step.fail:
            emit("sign_in_failed")
        return raw

    def create_auth_challenge(self, raw: Event) -> Event:
        """The first challenge of a session makes a code and emails it; retries in the same
        session reuse it (from the session's challenge metadata) and send nothing."""
        event = CreateAuthChallengeEvent(raw)
        code = model.code_from_session(event.session)
        if code is None:
            code = model.new_code(self._randbelow)
            if event.user_not_found or not event.email:
                # Nothing to send to; the answer can never be right.
                log.info("sign-in challenge for an unknown user")
            else:
                self._mailer.send_code(event.email, code)
                log.info("sign-in code sent")
                emit("sign_in_code_sent")
        event.present(
            public={"email": _masked(event.email)},
            private={"code": code},
            metadata=model.code_metadata(code),
        )
        return raw

    def verify_auth_challenge_response(self, raw: Event) -> Event:
        event = VerifyAuthChallengeResponseEvent(raw)
        expected = event.private_challenge_parameters.get("code", "")
        correct = bool(expected) and model.codes_match(expected, event.challenge_answer)
        event.answer(correct)
        return raw

    def post_authentication(self, raw: Event) -> Event:
        """Queues the ``Users`` upsert; the sign-in never waits on that work."""
        event = PostAuthenticationEvent(raw)
        at = self._now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._queue.publish(PostAuthenticationMessage(event.sub, event.email, at))
        emit("sign_in_succeeded")
        return raw

    def consume_post_authentication(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Upserts one ``Users`` row per message; answers the SQS partial-batch shape, so
        only failed messages are retried (and reach the DLQ after five receives)."""
        failures = []
        for record in sqs_records(event):
            try:
                message = PostAuthenticationMessage.from_json(record.body)
                self._users.record_sign_in(message.user_id, message.email, message.at)
            except Exception as exc:
                log.warning(
                    "post-authentication message failed",
                    extra={"message_id": record.message_id, "error_type": type(exc).__name__},
                )
                failures.append({"itemIdentifier": record.message_id})
        return {"batchItemFailures": failures}


def _masked(email: str) -> str:
    """What a client may show ("a***@example.com") without holding the whole address."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else ""


@settings.built_from_settings
def default() -> AuthTriggers:
    """The triggers wired to SES, SQS and DynamoDB from the auth settings (one per
    execution environment)."""
    from covidtracer.auth.messaging import SesCodeMailer, SqsPostAuthenticationQueue
    from covidtracer.auth.repository import DynamoUsers

    auth = settings.auth_settings()
    return AuthTriggers(
        mailer=SesCodeMailer(auth.email_sender),
        queue=SqsPostAuthenticationQueue(auth.post_authentication_queue_url),
        users=DynamoUsers(auth.tables.users, auth.aws),
    )
