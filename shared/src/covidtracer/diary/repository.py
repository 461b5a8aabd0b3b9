"""The port diary uploads write to: NCTS's location-history endpoint (the adapter is
``covidtracer.ncts.NctsClient``; the guess counters are ``covidtracer.ratelimit``'s)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class LocationHistory(Protocol):
    def send_location_history(self, consent_code: str, locations: list[Mapping[str, Any]]) -> None:
        """Hand the entries to NCTS in one request. Raises ``ConsentCodeRejected`` (a
        ``ValidationError``) for a code NCTS did not issue, ``Unavailable`` on an outage."""
