"""Typed views of the events Cognito sends to the sign-in triggers, and of the post-auth queue.

Hand-written rather than aws-lambda-powertools' data classes: a few properties over the raw
dict cost nothing at cold start. Each view reads the fields a trigger needs and writes its
``response`` into the same dict, which the handler returns to Cognito unchanged otherwise.

The post-authentication message schema lives here once, for its producer (the
PostAuthentication trigger) and its consumer (the SQS handler that upserts ``Users``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from covidtracer.signin.model import Challenge


class _Text:
    """A text field of the raw event, read through its path of keys ("" when absent)."""

    def __init__(self, *path: str) -> None:
        *self._within, self._name = path

    def __get__(self, event: TriggerEvent, owner: type[TriggerEvent]) -> str:
        value: Mapping[str, Any] = event.raw
        for key in self._within:
            value = value.get(key) or {}
        return str(value.get(self._name, ""))


class TriggerEvent:
    """Fields every Cognito user-pool trigger event carries."""

    trigger_source = _Text("triggerSource")
    user_name = _Text("userName")
    user_pool_id = _Text("userPoolId")
    client_id = _Text("callerContext", "clientId")
    email = _Text("request", "userAttributes", "email")
    sub = _Text("request", "userAttributes", "sub")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        raw.setdefault("request", {})
        if not isinstance(raw.get("response"), dict):
            raw["response"] = {}

    @property
    def request(self) -> dict[str, Any]:
        return self.raw["request"]  # type: ignore[no-any-return]

    @property
    def response(self) -> dict[str, Any]:
        return self.raw["response"]  # type: ignore[no-any-return]


class PreSignUpEvent(TriggerEvent):
    def confirm(self, *, auto_confirm: bool, verify_email: bool) -> None:
        self.response["autoConfirmUser"] = auto_confirm
        self.response["autoVerifyEmail"] = verify_email
        self.response.setdefault("autoVerifyPhone", False)


class _ChallengeSessionEvent(TriggerEvent):
    @property
    def session(self) -> list[Challenge]:
        return [
            Challenge(
                name=str(entry.get("challengeName", "")),
                result=bool(entry.get("challengeResult")),
                metadata=str(entry.get("challengeMetadata") or ""),
            )
            for entry in self.request.get("session") or []
        ]

    @property
    def user_not_found(self) -> bool:
        return bool(self.request.get("userNotFound"))


class DefineAuthChallengeEvent(_ChallengeSessionEvent):
    def decide(self, *, issue_tokens: bool, fail: bool, challenge_name: str | None) -> None:
        self.response["issueTokens"] = issue_tokens
        self.response["failAuthentication"] = fail
        if challenge_name:
            self.response["challengeName"] = challenge_name
        else:
            self.response.pop("challengeName", None)


class CreateAuthChallengeEvent(_ChallengeSessionEvent):
    challenge_name = _Text("request", "challengeName")

    def present(self, *, public: dict[str, str], private: dict[str, str], metadata: str) -> None:
        self.response["publicChallengeParameters"] = public
        self.response["privateChallengeParameters"] = private
        self.response["challengeMetadata"] = metadata


class VerifyAuthChallengeResponseEvent(TriggerEvent):
    @property
    def private_challenge_parameters(self) -> Mapping[str, str]:
        return self.request.get("privateChallengeParameters") or {}

    @property
    def challenge_answer(self) -> str:
        answer = self.request.get("challengeAnswer")
        return answer if isinstance(answer, str) else ""

    def answer(self, correct: bool) -> None:
        self.response["answerCorrect"] = correct


class PostAuthenticationEvent(TriggerEvent):
    pass


@dataclass(frozen=True)
class PostAuthenticationMessage:
    """One sign-in, queued for the ``Users`` upsert: ``{"userId", "email", "at"}``."""

    user_id: str
    email: str
    at: str  # ISO-8601 UTC

    def to_json(self) -> str:
        return json.dumps({"userId": self.user_id, "email": self.email, "at": self.at})

    @classmethod
    def from_json(cls, body: str) -> PostAuthenticationMessage:
        """Raises ValueError for a body that is not this schema (a poison message)."""
        value = json.loads(body)
        if not isinstance(value, dict):
            raise ValueError("message is not a JSON object")
        fields = (value.get("userId"), value.get("email"), value.get("at"))
        if not all(isinstance(f, str) and f for f in fields):
            raise ValueError("message lacks userId, email or at")
        return cls(*(str(f) for f in fields))


@dataclass(frozen=True)
class SqsRecord:
    message_id: str
    body: str


def sqs_records(event: Mapping[str, Any]) -> Iterator[SqsRecord]:
    """The records of an SQS event source mapping's event."""
    for record in event.get("Records") or []:
        yield SqsRecord(str(record.get("messageId", "")), str(record.get("body", "")))
