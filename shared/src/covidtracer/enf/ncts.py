"""The ENF API's NCTS client: callback requests go to the contact tracers' queue.

Real HTTP with the settings' timeout and bounded retries; NCTS down or refusing means
``Unavailable("ncts")`` (503), so the phone keeps the request and can try again.
"""

from __future__ import annotations

import json
from typing import Protocol

from covidtracer.enf import outbound
from covidtracer.enf.model import CallbackRequest
from covidtracer.errors import Unavailable
from covidtracer.logs import get_logger
from covidtracer.settings import PartnerSettings

log = get_logger(__name__)

CALLBACK_PATH = "/callback-requests"


class Ncts(Protocol):
    def request_callback(self, callback: CallbackRequest) -> None:
        """Queue a call-back for a contact tracer; raises ``Unavailable``."""


class HttpNcts:
    def __init__(self, settings: PartnerSettings) -> None:
        self._settings = settings

    def request_callback(self, callback: CallbackRequest) -> None:
        body = {
            "phone": callback.phone,
            "firstName": callback.first_name,
            "lastName": callback.last_name,
            "contactNotes": callback.contact_notes,
            "source": "enf",
        }
        response = outbound.post(
            f"{self._settings.ncts_base_url.rstrip('/')}{CALLBACK_PATH}",
            dependency="ncts",
            timeout=self._settings.ncts_timeout_seconds,
            data=json.dumps({k: v for k, v in body.items() if v is not None}),
            headers={"Content-Type": "application/json"},
        )
        if not 200 <= response.status_code < 300:
            log.error("ncts refused a callback request", extra={"status": response.status_code})
            raise Unavailable("ncts")
