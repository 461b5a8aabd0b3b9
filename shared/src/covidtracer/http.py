"""The only module that knows Chalice: domain errors become the documented HTTP shapes.

``ApiApp`` is a Chalice app whose routes are wrapped so that

- a ``DomainError`` becomes its status, headers and RFC 7807-style body (DESIGN §2);
- any other exception is logged (type and stack only) and becomes a bare 500 body that
  echoes nothing — not Chalice's default, which prints a stack trace when debug is on;
- every response carries ``Cache-Control: no-store`` unless the route set its own;
- every request is logged once as JSON with its request id, route, status and duration;
- errors Chalice produces before a view runs (unsupported media type, wrong method) are
  rewritten into the same error shape (unknown routes never reach the app: the API's
  gateway responses, and ``tracerstack.chalice_local`` locally, answer them);
- every input is checked at this boundary before a view sees it (DESIGN §8: bad input is
  a 4xx, never a crash): query strings must be printable ASCII, and a JSON body must be
  valid JSON (no NaN or Infinity), at most ``MAX_JSON_DEPTH`` deep, with no lone
  surrogates in any string, so no handler meets a value it cannot encode or recurse into.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalice import Chalice, Response  # type: ignore[attr-defined]
from chalice.app import Request

from covidtracer import chaff, logs
from covidtracer.config import SettingsError
from covidtracer.errors import (
    DomainError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    ValidationError,
)

log = logs.get_logger(__name__)

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"

_CHALICE_STATUS_TO_ERROR: dict[int, type[DomainError]] = {404: NotFound, 403: NotFound}

# Lambda refuses a synchronous request over 6 MB (API Gateway's own limit is 10 MB): the
# bound every body has in AWS, enforced here too so `chalice local` answers the same.
MAX_BODY_BYTES = 6_000_000
# Every document of both APIs is at most 4 levels deep; 32 leaves room and stays far from
# Python's recursion limit in anything that walks the value afterwards.
MAX_JSON_DEPTH = 32
# Query values are ids, numbers and versions: printable ASCII, short.
MAX_QUERY_VALUE_LENGTH = 256
_PRINTABLE_ASCII = re.compile(r"[ -~]*")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


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
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValidationError.of("Body", "The body is not valid JSON.") from exc
    if not isinstance(value, dict):
        raise ValidationError.of("Body", "The body must be a JSON object.")
    if _may_be_hostile(raw):
        _check_json(value)
    return value


def as_bytes(raw: bytes | str) -> bytes:
    """A request body as sent: Chalice hands a text body over as ``str`` (a lone surrogate
    kept, for the boundary's checks to refuse)."""
    return raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw


def _may_be_hostile(raw: bytes | str) -> bool:
    """Whether a parsed body needs ``_check_json``: a lone surrogate can only come from a
    ``\\uD800``-style escape (UTF-8 bytes cannot encode one), and nesting deeper than
    ``MAX_JSON_DEPTH`` needs more brackets than that. Keeps the walk off the hot path (an
    upload of 30 keys has 32 brackets)."""
    data = as_bytes(raw)
    if b"\x00" in data:
        return True  # UTF-16 or UTF-32 (json.loads accepts them): the byte scan cannot tell
    brackets = data.count(b"[") + data.count(b"{")
    return brackets > MAX_JSON_DEPTH or _SURROGATE_ESCAPE.search(data) is not None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_json(value: Any) -> None:
    """Raises ``ValidationError`` for a document nested deeper than ``MAX_JSON_DEPTH`` or
    holding a string (or key) with a lone surrogate. Iterative: depth costs no recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if not _encodable(item):
                raise ValidationError.of("Body", "The body must be valid UTF-8 text.")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValidationError.of("Body", f"The body is nested over {MAX_JSON_DEPTH} deep.")
        if isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        else:
            pending.extend((child, depth + 1) for child in item)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_query(params: Mapping[str, list[str]] | None) -> None:
    """Raises ``ValidationError`` (keyed by the parameter) for a query name or value that
    is not short printable ASCII: no route takes anything else, and this keeps look-alike
    digits (``²``, ``٣``) and control characters out of every parser behind it."""
    for name, values in (params or {}).items():
        for text in (name, *values):
            if len(text) > MAX_QUERY_VALUE_LENGTH or not _PRINTABLE_ASCII.fullmatch(text):
                key = _pascal(name) if _PRINTABLE_ASCII.fullmatch(name) else "Query"
                raise ValidationError.of(key[:64], "The query parameter is not valid.")


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if any."""
    header = str(request.headers.get("authorization", ""))
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


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
        except SettingsError as error:
            # The stage is misconfigured: say what to fix in the log (settings hold no personal
            # data) and answer 503, the shape of "not available now", instead of a bare 500.
            log.error(
                "settings are invalid", extra={"problems": [logs.scrub(p) for p in error.problems]}
            )
            return error_response(Unavailable("settings"))
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

    def _register_route(self, name: str, user_handler: Any, kwargs: Any, **unused: Any) -> None:
        # Every route passes here, the app's own and each blueprint's (registered later,
        # through the app), so each view gets the error mapping exactly once.
        super()._register_route(name, _map_errors(user_handler), kwargs, **unused)

    def _http_middleware(self, event: Request, get_response: Callable[..., Response]) -> Response:
        started = time.perf_counter()
        context = event.context or {}
        logs.bind(request_id=context.get("requestId") or _lambda_request_id(event))
        try:
            try:
                check_query(_multi_query(event))
            except ValidationError as error:
                response = error_response(error)
            else:
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


def _multi_query(event: Request) -> dict[str, list[str]] | None:
    """Every query parameter with all its values (Chalice's MultiDict keeps them all)."""
    params = event.query_params
    if not params:
        return None
    return {name: list(params.getlist(name)) for name in params}


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
        if response.status_code == 405:
            return error_response(MethodNotAllowed(str(response.headers.get("Allow", ""))))
        return error_response(error_type() if error_type else InternalError())
    return response


# ---------------------------------------------------------------------------- chaff


@dataclass(frozen=True)
class ChaffRoute:
    """How one route answers chaff (``covidtracer.chaff``): the fake answer of a given body
    size, and a check a chaff request must still pass (the verification API's API key)."""

    tracker: chaff.Tracker
    answer: Callable[[int], Response]
    check: Callable[[Request], None] | None = None


def chaff_answer_padding(size: int) -> Response:
    """Google's chaff answer (go-chaff's JSON responder): ``{"padding": …}`` of ``size``."""
    return json_response({"padding": chaff.padding_text(size - len('{"padding":""}'))})


def chaff_answer_token(size: int) -> Response:
    """``POST /exposures/verify``'s answer shape, with a token that exists nowhere."""
    return json_response({"token": str(uuid.uuid4())})


def chaff_answer_no_content(size: int) -> Response:
    return no_content()


def chaff_middleware(
    routes: Mapping[str, ChaffRoute], sleep: Callable[[float], None] = time.sleep
) -> Callable[[Request, Callable[..., Response]], Response]:
    """An HTTP middleware for the ``"METHOD /path"`` routes of ``routes``: a request with an
    ``X-Chaff`` header gets the route's fake answer, as large and as slow as its recent real
    answers, and reaches no view (nothing is stored or counted); every other request's
    answer size and latency is recorded."""

    def middleware(event: Request, get_response: Callable[..., Response]) -> Response:
        context = event.context or {}
        route = routes.get(f"{event.method} {context.get('resourcePath')}")
        if route is None:
            return get_response(event)
        started = time.perf_counter()
        if not chaff.is_chaff(event.headers):
            response = get_response(event)
            body = response.body
            size = len(body.encode() if isinstance(body, str) else body or b"")
            route.tracker.record(size, (time.perf_counter() - started) * 1000)
            return response
        try:
            if route.check is not None:
                route.check(event)
        except DomainError as error:
            return error_response(error)
        plausible = route.tracker.plausible()
        response = route.answer(plausible.size)
        remaining = plausible.latency_ms / 1000 - (time.perf_counter() - started)
        if remaining > 0:
            sleep(remaining)
        return response

    return middleware
