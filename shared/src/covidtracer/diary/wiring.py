"""Diary uploads' production adapters, built once (``config.reset`` forgets them)."""

from __future__ import annotations

from covidtracer import config
from covidtracer.contactdetails.settings import details_settings
from covidtracer.diary.service import Dependencies


@config.cached
def dependencies() -> Dependencies:
    """The guess counters (DynamoDB) and NCTS; pynamodb loads here, on first use."""
    from covidtracer import ncts
    from covidtracer.ratelimit.repository import DynamoCounters

    settings = details_settings()
    counters = DynamoCounters(settings.tables.rate_limits)
    return Dependencies(counters, ncts.client(settings.partners), settings.diary, settings.stage)
