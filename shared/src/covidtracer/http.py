"""The only module that knows Chalice: domain errors become the documented HTTP shapes.

``ApiApp`` is a Chalice app whose routes are wrapped so that

- a ``DomainError`` becomes its status, headers and RFC 7807-style body (DESIGN §2);
- any other exception is logged (type and stack only) and becomes a bare 500 body that
  echoes nothing — not Chalice's default, which prints a stack trace when debug is on;
- every response carries ``Cache-Control: no-store`` unless the route set its own;
- every request is logged once as JSON with its request id, route, status and duration;
- errors Chalice produces before a view runs (unsupported media type, unknown route under
  ``chalice local``) are rewritten into the same error shape.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response  # type: ignore[attr-defined]
from chalice.app import Request

from covidtracer import logs
from covidtracer.errors import (
    DomainError,
    InternalError,
    NotFound,
    PayloadTooLarge,
    ValidationError,
)

log = logs.get_logger(__name__)

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"

_CHALICE_STATUS_TO_ERROR: dict[int, type[DomainError]] = {404: NotFound, 403: NotFound}

# Lambda refuses a synchronous request over 6 MB (API Gateway's own limit is 10 MB): the
# bound every body has in AWS, enforced here too so `chalice local` answers the same.
MAX_BODY_BYTES = 6_000_000


def error_response(error: DomainError) -> Response:
    return Response(
        body=json.dumps(error.body()),
        status_code=error.status,
        headers={"Content-Type": JSON, "Cache-Control": "no-store", **error.headers()},
    )


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers={"Content-Type": JSON, "Cache-Control": "no-store", **(headers or {})},
    )


def no_content() -> Response:
    return Response(body="", status_code=204, headers={"Cache-Control": "no-store"})


def json_body(
    request: Request, *, required: bool = True, max_bytes: int = MAX_BODY_BYTES
) -> dict[str, Any]:
    """The request's JSON object; malformed JSON or a non-object is a validation error, a
    body over ``max_bytes`` is ``PayloadTooLarge``."""
    raw = request.raw_body
    if raw and len(raw) > max_bytes:
        raise PayloadTooLarge(f"The body must be at most {max_bytes} bytes.")
    if not raw:
        if required:
            raise ValidationError.of("Body", "A JSON body is required.")
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError.of("Body", "The body is not valid JSON.") from exc
    if not isinstance(value, dict):
        raise ValidationError.of("Body", "The body must be a JSON object.")
    return value


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if any."""
    header = str(request.headers.get("authorization", ""))
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticated_user_id(request: Request) -> str:
    """The caller's userId from their bearer access token (DESIGN §2.2): verified here when
    ``VERIFY_TOKENS_IN_APP`` is on, else taken from API Gateway's Cognito authorizer.
    Raises Unauthorized (401) for a missing, forged, expired or foreign token."""
    from covidtracer.auth import tokens

    return tokens.authenticated_user_id(bearer_token(request), request.context or {})


def source_ip(request: Request) -> str:
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


def _map_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def mapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except DomainError as error:
            if error.status >= 500:
                log.error("request failed", extra={"error": str(error)})
            return error_response(error)
        except Exception:
            log.exception("unhandled error")
            return error_response(InternalError())

    return mapped


class ApiApp(Chalice):
    """A Chalice app with the backend's error mapping, headers and access log built in."""

    def __init__(self, app_name: str) -> None:
        super().__init__(app_name=app_name)
        # debug would put stack traces in 500 bodies; it stays off in every stage.
        self.debug = False
        self.register_middleware(self._http_middleware, "http")
        send_analytics_after_each_invocation(self)

    def route(self, path: str, **kwargs: Any) -> Callable[..., Any]:
        register = super().route(path, **kwargs)

        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            register(_map_errors(view))
            return view

        return decorator

    def _http_middleware(self, event: Request, get_response: Callable[..., Response]) -> Response:
        started = time.perf_counter()
        context = event.context or {}
        logs.bind(request_id=context.get("requestId") or _lambda_request_id(event))
        try:
            response = _normalise(get_response(event))
            log.info(
                "request",
                extra={
                    "method": event.method,
                    "route": context.get("resourcePath"),
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            return response
        finally:
            logs.clear()


def send_analytics_after_each_invocation(app: Chalice, *, wait_at_end: bool = True) -> None:
    """At the end of each invocation, hand its analytics events to the sender: a request
    only wakes the sender thread (a request never waits on Firehose); a job or stream batch
    (``wait_at_end``) waits for them, at most ``ANALYTICS_FLUSH_TIMEOUT_MS``, because the
    process may be frozen or end as soon as it returns. Cognito triggers are part of a
    person's sign-in (Cognito allows them 5 s), so their app passes ``wait_at_end=False``."""
    from covidtracer.analytics import emitter

    def middleware(event: Any, get_response: Callable[..., Any]) -> Any:
        try:
            return get_response(event)
        finally:
            if wait_at_end and not isinstance(event, Request):
                emitter.flush()
            else:
                emitter.wake()

    app.register_middleware(middleware, "all")


def _lambda_request_id(event: Request) -> str | None:
    lambda_context = getattr(event, "lambda_context", None)
    request_id = getattr(lambda_context, "aws_request_id", None)
    return str(request_id) if request_id else None


def _normalise(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        # Chalice's own error body ({"Code", "Message"}): speak the documented shape instead.
        error_type = _CHALICE_STATUS_TO_ERROR.get(response.status_code)
        if response.status_code == 415:
            return error_response(ValidationError.of("Body", "Send the body as application/json."))
        if response.status_code == 400:
            return error_response(ValidationError.of("Body", "The request is malformed."))
        return error_response(error_type() if error_type else InternalError())
    return response
