"""The production dependencies of exposure events, built once per execution environment
(forgotten with the settings by ``covidtracer.config.reset``)."""

from __future__ import annotations

from functools import partial

from covidtracer import config
from covidtracer.contactdetails.settings import details_settings
from covidtracer.exposures.service import Dependencies


@config.cached
def dependencies() -> Dependencies:
    """DynamoDB, S3, NCTS, FCM and the NCTS key's secret (libraries load here, on first use)."""
    from covidtracer import aws, fcm, ncts
    from covidtracer.exposures.repository import DynamoExposureEvents, S3FeedStore
    from covidtracer.ratelimit.repository import DynamoCounters

    settings = details_settings()
    return Dependencies(
        events=DynamoExposureEvents(settings.tables.exposure_events),
        feed=S3FeedStore(settings.events.feed_bucket),
        counters=DynamoCounters(settings.tables.rate_limits),
        ncts=ncts.client(settings.partners),
        fcm=fcm.client(settings.fcm),
        rules=settings.events,
        ncts_api_key=partial(aws.secret_string, settings.events.ncts_api_key_secret_id),
    )
