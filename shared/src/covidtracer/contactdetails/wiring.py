"""The production dependencies of contact details, built once per execution environment
(forgotten with the settings by ``covidtracer.config.reset``)."""

from __future__ import annotations

from covidtracer import config
from covidtracer.contactdetails.service import Dependencies
from covidtracer.settings import details_settings


@config.cached
def dependencies() -> Dependencies:
    """DynamoDB, and Cognito for the email fallback (their libraries load here, on first use)."""
    from covidtracer.contactdetails.repository import AccountEmailsFromUsers, DynamoContactDetails

    settings = details_settings()
    return Dependencies(
        details=DynamoContactDetails(settings.tables.personal_details),
        emails=AccountEmailsFromUsers(settings.tables.users, settings.user_pool_id, settings.aws),
    )
