"""The production dependencies of exposure events, built once per execution environment
(forgotten with the settings by ``covidtracer.settings.reset``)."""

from __future__ import annotations

from functools import partial

from covidtracer import settings
from covidtracer.exposures.service import Dependencies
from covidtracer.exposures.settings import details_settings


@settings.built_from_settings
def dependencies() -> Dependencies:
    """DynamoDB, S3, NCTS, FCM and the NCTS key's secret (libraries load here, on first use)."""
    from covidtracer import aws, fcm, ncts
    from covidtracer.exposures.repository import DynamoExposureEvents, S3FeedStore
    from covidtracer.ratelimit.repository import DynamoCounters

    config = details_settings()
    return Dependencies(
        events=DynamoExposureEvents(config.tables.exposure_events),
        feed=S3FeedStore(config.feed_bucket),
        counters=DynamoCounters(config.tables.rate_limits),
        ncts=ncts.client(config.partners),
        fcm=fcm.client(config.fcm),
        rules=config.events,
        ncts_api_key=partial(aws.secret_string, config.ncts_api_key_secret_id),
    )
