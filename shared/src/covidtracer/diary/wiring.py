"""The production dependencies of diary uploads, built once per execution environment
(forgotten with the settings by ``covidtracer.settings.reset``)."""

from __future__ import annotations

from covidtracer import settings
from covidtracer.diary.service import Dependencies
from covidtracer.diary.settings import details_settings


@settings.built_from_settings
def dependencies() -> Dependencies:
    """The rate-limit table and the NCTS client (their libraries load here, on first use)."""
    from covidtracer import ncts
    from covidtracer.ratelimit.repository import DynamoCounters

    config = details_settings()
    return Dependencies(
        counters=DynamoCounters(config.tables.rate_limits),
        ncts=ncts.client(config.partners),
        rules=config.diary,
    )
