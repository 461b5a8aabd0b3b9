"""The production dependencies of diary uploads, built once per execution environment
(forgotten with the settings by ``covidtracer.config.reset``)."""

from __future__ import annotations

from covidtracer import config
from covidtracer.diary.service import Dependencies
from covidtracer.settings import details_settings


@config.cached
def dependencies() -> Dependencies:
    """The rate-limit table and the NCTS client (their libraries load here, on first use)."""
    from covidtracer import ncts
    from covidtracer.ratelimit.repository import DynamoCounters

    settings = details_settings()
    return Dependencies(
        counters=DynamoCounters(settings.tables.rate_limits),
        ncts=ncts.client(settings.partners),
        rules=settings.diary,
    )
