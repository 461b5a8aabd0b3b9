"""The ENF API's NCTS client: callback requests go to the contact tracers' queue.

Sent through the shared NCTS client (timeouts, bounded retries, idempotency key); NCTS down
or refusing means ``Unavailable("ncts")`` (503), so the phone keeps the request and retries.
"""

from __future__ import annotations

from typing import Protocol

from covidtracer import ncts
from covidtracer.enfkeys.model import CallbackRequest
from covidtracer.settings import PartnerSettings


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
        ncts.client(self._settings).send_callback_request(
            {k: v for k, v in body.items() if v is not None}
        )
