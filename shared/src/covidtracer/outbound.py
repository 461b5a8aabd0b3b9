"""Outbound HTTP to partners (NCTS, FCM, the SMS provider, Apple): one pooled client.

Built on urllib3, which the Lambda runtime already carries as botocore's dependency, so no
service ships an HTTP library of its own (the ENF package must stay under 10 MB). Imported
on first use.

``post`` returns the partner's answer for the adapter to judge. It raises ``Unreachable``
when the request never reached the partner (connection refused, connect timeout) — always
safe to retry — and ``Unavailable`` for anything after that (read timeout, broken
connection), where the partner may have acted. Both are 503s for the caller.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from covidtracer.errors import Unavailable
from covidtracer.logs import get_logger

if TYPE_CHECKING:
    import urllib3

log = get_logger(__name__)

# Answers that mean "try again": retried when the caller asks for status retries.
RETRY_STATUSES = (502, 503, 504)
# Connecting to a partner takes milliseconds when it is there; a connection that has not
# been made in 2 s will not be, and each retry of it would spend the caller's budget
# (docs/operations.md, "Time budget"). The caller's ``timeout`` bounds each read.
CONNECT_TIMEOUT_SECONDS = 2.0


class Unreachable(Unavailable):
    """Nothing reached the partner; a retry cannot duplicate anything."""


@dataclass(frozen=True)
class Reply:
    status_code: int
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON; raises ``ValueError`` when it is not."""
        return jsonlib.loads(self.content)


@cache
def _pool() -> urllib3.PoolManager:
    import urllib3

    return urllib3.PoolManager(num_pools=8, maxsize=4)


def post(
    url: str,
    *,
    dependency: str,
    timeout: float,
    json: Any = None,
    data: Mapping[str, str] | str | None = None,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    retries: int = 2,
    retry_statuses: bool = True,
    backoff_seconds: float = 0.2,
) -> Reply:
    """POST ``json`` (as JSON), or ``data`` (a mapping is form-encoded); see the module doc.

    ``retries`` covers connection failures and, with ``retry_statuses``, 502/503/504, with
    exponential backoff from ``backoff_seconds``; a read timeout is never retried here. A
    partner that accepts and never answers therefore costs ``timeout``; one that cannot be
    reached, (``retries`` + 1) x 2 s plus the backoff.
    """
    import urllib3
    from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, NewConnectionError

    send_headers = dict(headers or {})
    if json is not None:
        body: str | None = jsonlib.dumps(json, separators=(",", ":"))
        send_headers.setdefault("Content-Type", "application/json")
    elif isinstance(data, Mapping):
        body = urlencode(data)
        send_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    else:
        body = data
    if auth is not None:
        send_headers.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
    retry = urllib3.Retry(
        total=retries,
        connect=retries,
        read=0,
        other=0,
        status=retries if retry_statuses else 0,
        status_forcelist=RETRY_STATUSES if retry_statuses else (),
        allowed_methods=None,  # POSTs too: only failures that are safe to repeat are retried
        backoff_factor=backoff_seconds,
        raise_on_status=False,
    )
    try:
        response = _pool().request(
            "POST",
            url,
            body=body,
            headers=send_headers,
            timeout=urllib3.Timeout(connect=min(timeout, CONNECT_TIMEOUT_SECONDS), read=timeout),
            retries=retry,
        )
    except (MaxRetryError, NewConnectionError, ConnectTimeoutError) as exc:
        reason = exc.reason if isinstance(exc, MaxRetryError) else exc
        unreachable = isinstance(reason, (NewConnectionError, ConnectTimeoutError))
        _log_failure(dependency, reason)
        raise (Unreachable if unreachable else Unavailable)(dependency) from exc
    except HTTPError as exc:
        _log_failure(dependency, exc)
        raise Unavailable(dependency) from exc
    return Reply(response.status, response.data, dict(response.headers))


def _log_failure(dependency: str, error: object) -> None:
    log.error(
        "partner unreachable", extra={"dependency": dependency, "error_type": type(error).__name__}
    )
