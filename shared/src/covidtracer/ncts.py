"""NCTS (the National Contact Tracing Solution): the REST client for diaries and callback
requests, and the one check of the credential NCTS presents when it calls us.

Real HTTP through ``covidtracer.outbound``, with the timeout from settings and a bounded
number of retries with exponential backoff on connection failures and 5xx answers; never
on 4xx, which would only fail again. Each logical request carries one
``Idempotency-Key`` on all its attempts, so NCTS can drop a repeat of one it did process.

Errors: ``ConsentCodeRejected`` (400 ``errors.ConsentCode``) when NCTS refuses a diary's
consent code; ``RequestRefused`` (400) when NCTS refuses the request itself (400 or 422: a
retry would only be refused again, so the caller must not be told to retry);
``Unavailable("ncts")`` when NCTS cannot be reached, keeps failing, or answers in a way this
client does not understand (the caller keeps its data and retries later).
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from covidtracer import logs, outbound
from covidtracer.errors import Unauthorized, Unavailable, ValidationError
from covidtracer.settings import PartnerSettings

log = logs.get_logger(__name__)

LOCATION_HISTORY = "location-history"
CALLBACK_REQUESTS = "callback-requests"
INVALID_CONSENT_CODE = "invalid_consent_code"


def require_api_key(presented: str | None, expected: Callable[[], str]) -> None:
    """The ``x-api-key`` NCTS sends on its calls to both APIs, compared in constant time
    with ``expected()`` (the secret, read from Secrets Manager).

    Raises ``Unauthorized`` (401) for a missing or wrong key and ``Unavailable`` (503) when
    the key cannot be read, so NCTS retries an outage instead of dropping its call.
    """
    if not presented:
        raise Unauthorized()
    try:
        key = expected()
    except ValueError as error:  # a secret without a string value: misconfigured, not input
        raise Unavailable("secretsmanager:ncts_api_key") from error
    if not hmac.compare_digest(presented.encode(), key.encode()):
        raise Unauthorized()


class RequestRefused(ValidationError):
    """NCTS refused what was sent (400/422): input it will never accept, not an outage."""

    def __init__(self) -> None:
        super().__init__({"Body": ["The contact tracing service did not accept the request."]})


# NCTS's answers that judge the request, not its own health.
REFUSED_STATUSES = (400, 422)


class ConsentCodeRejected(ValidationError):
    """NCTS does not know the diary's consent code (expired, mistyped or never issued)."""

    def __init__(self) -> None:
        super().__init__({"ConsentCode": ["The consent code is invalid."]})


class NctsClient:
    def __init__(
        self, settings: PartnerSettings, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._base_url = settings.ncts_base_url.rstrip("/")
        self._timeout = settings.ncts_timeout_seconds
        self._retries = settings.ncts_retries
        self._backoff = settings.ncts_backoff_ms / 1000
        self._sleep = sleep

    def send_location_history(self, consent_code: str, locations: list[Mapping[str, Any]]) -> None:
        """Hands a diary to NCTS. Raises ``ConsentCodeRejected`` or ``Unavailable``."""
        response = self._post(
            LOCATION_HISTORY, {"consentCode": consent_code, "locations": locations}
        )
        if response.status_code == 400 and _error_code(response) == INVALID_CONSENT_CODE:
            raise ConsentCodeRejected()
        self._expect_success(response, LOCATION_HISTORY)

    def send_callback_request(self, request: Mapping[str, Any]) -> None:
        """Queues a callback for the contact tracers. Raises ``Unavailable``."""
        self._expect_success(self._post(CALLBACK_REQUESTS, request), CALLBACK_REQUESTS)

    def _post(self, operation: str, body: Mapping[str, Any]) -> outbound.Reply:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        url = f"{self._base_url}/{operation}"
        for attempt in range(self._retries + 1):
            last_attempt = attempt == self._retries
            try:
                response = outbound.post(
                    url,
                    dependency="ncts",
                    timeout=self._timeout,
                    json=body,
                    headers=headers,
                    retries=0,
                )
            except outbound.Unreachable:
                # Nothing reached NCTS, so a retry is safe.
                if last_attempt:
                    raise
            # Any other Unavailable (a read timeout: NCTS may have it) propagates; the
            # idempotency key covers the caller's own retry.
            else:
                if response.status_code < 500 or last_attempt:
                    return response
            log.warning("ncts retry", extra={"operation": operation, "attempt": attempt + 1})
            self._sleep(self._backoff * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    @staticmethod
    def _expect_success(response: outbound.Reply, operation: str) -> None:
        if 200 <= response.status_code < 300:
            return
        if response.status_code in REFUSED_STATUSES:
            log.warning("ncts refused the request", extra={"operation": operation})
            raise RequestRefused()
        log.error("ncts refused", extra={"operation": operation, "status": response.status_code})
        raise Unavailable(f"ncts ({operation} answered {response.status_code})")


def _error_code(response: outbound.Reply) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


@cache
def client(settings: PartnerSettings) -> NctsClient:
    """The client for these settings, kept for the life of the execution environment."""
    return NctsClient(settings)
