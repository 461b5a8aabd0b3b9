"""Outbound HTTP for the ENF adapters (NCTS, SMS, Apple): timeouts, bounded retries, 503s.

``requests`` is imported on first use. A connection failure or timeout becomes
``Unavailable(dependency)``; the response itself is returned for the adapter to judge.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from covidtracer.errors import Unavailable
from covidtracer.logs import get_logger

if TYPE_CHECKING:
    import requests

log = get_logger(__name__)

# Only failures where the partner surely did not act (no connection) or said "try again"
# are retried, twice, with a short backoff: a caller waits seconds, not minutes.
RETRY_STATUSES = (502, 503, 504)


@cache
def session(retry_statuses: bool) -> requests.Session:
    """One pooled session per execution environment (kept warm between invocations)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=2,
        connect=2,
        read=0,
        status=2 if retry_statuses else 0,
        status_forcelist=RETRY_STATUSES if retry_statuses else (),
        allowed_methods=None,
        backoff_factor=0.2,
        raise_on_status=False,
    )
    http = requests.Session()
    http.mount("http://", HTTPAdapter(max_retries=retry))
    http.mount("https://", HTTPAdapter(max_retries=retry))
    return http


def post(
    url: str, *, dependency: str, timeout: float, retry_statuses: bool = True, **kwargs: Any
) -> requests.Response:
    """POST with retries; raises ``Unavailable`` when ``dependency`` cannot be reached."""
    import requests

    try:
        return session(retry_statuses).post(url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        log.error(
            "partner unreachable",
            extra={"dependency": dependency, "error_type": type(exc).__name__},
        )
        raise Unavailable(dependency) from exc
