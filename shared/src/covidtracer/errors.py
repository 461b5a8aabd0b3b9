"""The one exception tree of the backend; ``covidtracer.http`` maps it to HTTP.

    DomainError                      (any rule the caller broke or a state we refuse)
    ├── ValidationError         400  urn:errors:validation   (per-field messages)
    ├── InvalidAuthCode         400  urn:errors:invalid-auth-code
    ├── InvalidAuthSession      400  urn:errors:invalid-auth-session
    ├── Disabled                400  urn:errors:disabled      (feature switched off)
    ├── Unauthorized            401  urn:errors:unauthorized
    ├── Forbidden               403  urn:errors:forbidden     (ENF: unknown code or token)
    ├── MfaEnabled              403  urn:errors:invalid-auth-mfa-enabled (+ userId)
    ├── NotFound                404  urn:errors:not-found
    ├── MethodNotAllowed        405  urn:errors:method-not-allowed (+ Allow)
    ├── Conflict                409  urn:errors:conflict
    ├── Gone                    410  urn:errors:gone          (ENF: expired code or token)
    ├── PayloadTooLarge         413  urn:errors:payload-too-large (over Lambda's 6 MB)
    ├── TooManyRequests         429  urn:errors:too-many-requests (+ Retry-After)
    ├── Unavailable             503  urn:errors:unavailable   (a dependency is down)
    └── InternalError           500  urn:errors:internal

The ``type`` strings and titles are read by phones in the field: they are defined here once
and nowhere else. Messages in ``errors`` must never echo personal data back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class DomainError(Exception):
    """Root of every error a handler may turn into a client-visible response."""

    type: ClassVar[str] = "urn:errors:internal"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "An unexpected error occurred."

    def __init_subclass__(
        cls, *, type: str | None = None, status: int | None = None, title: str | None = None
    ) -> None:
        """``class X(DomainError, type=..., status=..., title=...)``; omitted ones inherit."""
        super().__init_subclass__()
        if type is not None:
            cls.type = type
        if status is not None:
            cls.status = status
        if title is not None:
            cls.title = title

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail

    def body(self) -> dict[str, Any]:
        """The RFC 7807-style body of DESIGN §2."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        return body

    def headers(self) -> dict[str, str]:
        return {}


class ValidationError(
    DomainError,
    type="urn:errors:validation",
    status=400,
    title="One or more validation errors occurred.",
):
    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__()
        self.errors = {name: list(messages) for name, messages in errors.items()}

    @classmethod
    def of(cls, field_name: str, message: str) -> ValidationError:
        return cls({field_name: [message]})

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": self.errors}


class InvalidAuthCode(
    DomainError,
    type="urn:errors:invalid-auth-code",
    status=400,
    title="The verification code is incorrect.",
):
    """The sign-in verification code does not match."""


class InvalidAuthSession(
    DomainError,
    type="urn:errors:invalid-auth-session",
    status=400,
    title="The sign-in session has expired or is no longer valid.",
):
    """The sign-in session is unknown, expired or already used."""


class Disabled(
    DomainError, type="urn:errors:disabled", status=400, title="This feature is disabled."
):
    """The feature is switched off in this stage's settings."""


class Unauthorized(
    DomainError, type="urn:errors:unauthorized", status=401, title="Authentication is required."
):
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(
    DomainError, type="urn:errors:forbidden", status=403, title="The credential is not accepted."
):
    """ENF: the verification code or upload token is unknown."""


class MfaEnabled(
    DomainError,
    type="urn:errors:invalid-auth-mfa-enabled",
    status=403,
    title="This account uses an authenticator app.",
):
    def __init__(self, user_id: str) -> None:
        super().__init__()
        self.user_id = user_id

    def body(self) -> dict[str, Any]:
        return {**super().body(), "userId": self.user_id}


class NotFound(
    DomainError, type="urn:errors:not-found", status=404, title="The resource was not found."
):
    """The addressed resource does not exist (or is not the caller's)."""


class MethodNotAllowed(
    DomainError,
    type="urn:errors:method-not-allowed",
    status=405,
    title="The route does not accept this method.",
):
    def __init__(self, allowed: str = "") -> None:
        super().__init__()
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allowed} if self.allowed else {}


class Conflict(
    DomainError,
    type="urn:errors:conflict",
    status=409,
    title="The request conflicts with the current state.",
):
    """The request would contradict what is already stored."""


class Gone(DomainError, type="urn:errors:gone", status=410, title="The code or token has expired."):
    """ENF: the verification code or upload token has expired."""


class PayloadTooLarge(
    DomainError,
    type="urn:errors:payload-too-large",
    status=413,
    title="The request body is too large.",
):
    """The body is over what Lambda accepts (6 MB)."""


class TooManyRequests(
    DomainError,
    type="urn:errors:too-many-requests",
    status=429,
    title="Too many requests. Try again later.",
):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__()
        self.retry_after_seconds = max(1, int(retry_after_seconds))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class Unavailable(
    DomainError,
    type="urn:errors:unavailable",
    status=503,
    title="A service this request depends on is unavailable. Try again later.",
):
    """A dependency (NCTS, Cognito, DynamoDB, PostgreSQL …) failed; nothing was half-done."""

    def __init__(self, dependency: str) -> None:
        # The dependency name goes to logs, not to the body: it is an internal detail.
        super().__init__()
        self.dependency = dependency

    def __str__(self) -> str:
        return f"{self.dependency} is unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class InternalError(
    DomainError, type="urn:errors:internal", status=500, title="An unexpected error occurred."
):
    """A bug or an unexpected state; the body says nothing more."""
