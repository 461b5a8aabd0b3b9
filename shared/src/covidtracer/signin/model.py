"""Pure rules of passwordless email sign-in (DESIGN §2.1): requests, codes, challenge steps,
and the sign-in record the stores keep.

Nothing here does I/O; time and randomness come in as parameters.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from covidtracer.errors import ValidationError

CODE_DIGITS = 6
# Three wrong answers end a session: with 10^6 codes and at most 5 sessions per email per
# 15 minutes, a guesser's odds stay below 1 in 60,000 an hour.
MAX_WRONG_ANSWERS = 3
CUSTOM_CHALLENGE = "CUSTOM_CHALLENGE"
# challengeMetadata carries the session's code to CreateAuthChallenge's retries (Cognito
# hands the session list back to every trigger), so a retry reuses it and sends no email.
CODE_METADATA_PREFIX = "CODE-"
VERIFICATION_ID_MAX_LENGTH = 128

_CODE = re.compile(r"[0-9]{6}")
# RFC 5321 limits; the pattern is the practical subset phones and mail providers use.
EMAIL_MAX_LENGTH = 254
_LOCAL_PART_MAX_LENGTH = 64
_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
)


@dataclass(frozen=True)
class InitiateRequest:
    client_id: str
    email: str


@dataclass(frozen=True)
class ConfirmRequest:
    client_id: str
    email: str
    code: str
    verification_id: str


@dataclass(frozen=True)
class SignInRecord:
    """The server side of a ``verificationId``: whose sign-in it is and Cognito's session
    (``PENDING_SESSION`` until Cognito has started it)."""

    verification_id: str
    user_id: str
    email_key: str
    client_id: str
    session: str
    created_at: int
    expires_at: int


# A record is stored before its Cognito session starts (and its code is emailed): a store
# that is down must refuse the sign-in before anything is sent.
PENDING_SESSION = "pending"


class StaleSession(Exception):
    """The record's session changed under us (a concurrent confirm won the race)."""


@dataclass(frozen=True)
class Challenge:
    """One entry of Cognito's ``request.session`` list."""

    name: str
    result: bool
    metadata: str = ""


@dataclass(frozen=True)
class NextStep:
    """DefineAuthChallenge's answer: issue tokens, fail, or present ``challenge_name``."""

    issue_tokens: bool
    fail: bool
    challenge_name: str | None


def normalise_email(raw: object) -> str | None:
    """The address trimmed and lower-cased, or None when it is not a usable email address."""
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    if len(email) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(email):
        return None
    if len(email.partition("@")[0]) > _LOCAL_PART_MAX_LENGTH:
        return None
    return email


def parse_initiate(body: Mapping[str, Any], client_ids: Collection[str]) -> InitiateRequest:
    """Validates an initiate body; raises ValidationError naming every bad field."""
    errors: dict[str, list[str]] = {}
    client_id = _client_id(body, client_ids, errors)
    email = _email(body, errors)
    if errors:
        raise ValidationError(errors)
    return InitiateRequest(client_id, email)


def parse_confirm(body: Mapping[str, Any], client_ids: Collection[str]) -> ConfirmRequest:
    """Validates a confirm body; raises ValidationError naming every bad field."""
    errors: dict[str, list[str]] = {}
    client_id = _client_id(body, client_ids, errors)
    email = _email(body, errors)
    code = body.get("code")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        errors["Code"] = ["The code must be 6 digits."]
    verification_id = body.get("verificationId")
    if (
        not isinstance(verification_id, str)
        or not verification_id.strip()
        or len(verification_id) > VERIFICATION_ID_MAX_LENGTH
    ):
        errors["VerificationId"] = ["The verification id is required."]
    if errors:
        raise ValidationError(errors)
    return ConfirmRequest(client_id, email, str(code), str(verification_id))


def _client_id(body: Mapping[str, Any], client_ids: Collection[str], errors: dict[str, Any]) -> str:
    client_id = body.get("clientId")
    if not isinstance(client_id, str) or client_id not in client_ids:
        errors["ClientId"] = ["The client id is not a known app client."]
        return ""
    return client_id


def _email(body: Mapping[str, Any], errors: dict[str, Any]) -> str:
    email = normalise_email(body.get("email"))
    if email is None:
        errors["Email"] = ["The email address is invalid."]
        return ""
    return email


def new_code(randbelow: Callable[[int], int]) -> str:
    """A 6-digit code; ``randbelow`` must be a CSPRNG (``secrets.randbelow``)."""
    return f"{randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def codes_match(expected: str, answer: str) -> bool:
    """Constant-time comparison, so response timing leaks nothing about the code."""
    return hmac.compare_digest(expected.encode(), answer.encode())


def code_metadata(code: str) -> str:
    return f"{CODE_METADATA_PREFIX}{code}"


def code_from_session(session: Sequence[Challenge]) -> str | None:
    """The code an earlier challenge of this session carried, if any."""
    for challenge in reversed(session):
        if challenge.metadata.startswith(CODE_METADATA_PREFIX):
            return challenge.metadata[len(CODE_METADATA_PREFIX) :]
    return None


def next_step(session: Sequence[Challenge], user_not_found: bool = False) -> NextStep:
    """DefineAuthChallenge's rule: first a code challenge; a right answer issues tokens;
    ``MAX_WRONG_ANSWERS`` wrong ones (or a challenge we never set) fail the session."""
    if user_not_found or any(c.name != CUSTOM_CHALLENGE for c in session):
        return NextStep(issue_tokens=False, fail=True, challenge_name=None)
    if session and session[-1].result:
        return NextStep(issue_tokens=True, fail=False, challenge_name=None)
    if sum(1 for c in session if not c.result) >= MAX_WRONG_ANSWERS:
        return NextStep(issue_tokens=False, fail=True, challenge_name=None)
    return NextStep(issue_tokens=False, fail=False, challenge_name=CUSTOM_CHALLENGE)


def pseudonym(value: str) -> str:
    """A stable pseudonym of an address (email, IP) for keys, so tables hold no addresses."""
    return hashlib.sha256(value.encode()).hexdigest()


def code_email(code: str) -> tuple[str, str, str]:
    """(subject, text body, HTML body) of the sign-in email."""
    subject = "Your NZ COVID Tracer sign-in code"
    text = (
        f"Your NZ COVID Tracer sign-in code is {code}.\n\n"
        "It expires in a few minutes. If you did not ask to sign in, ignore this email."
    )
    html = (
        "<html><body>"
        f"<p>Your NZ COVID Tracer sign-in code is <strong>{code}</strong>.</p>"
        "<p>It expires in a few minutes. If you did not ask to sign in, ignore this email.</p>"
        "</body></html>"
    )
    return subject, text, html


def masked(email: str) -> str:
    """What a client may show ("a***@example.com") without holding the whole address."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else ""
