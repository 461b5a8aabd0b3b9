"""The production dependencies of contact details, built once per execution environment
(forgotten with the settings by ``covidtracer.settings.reset``)."""

from __future__ import annotations

from covidtracer import settings
from covidtracer.contactdetails.service import Dependencies
from covidtracer.contactdetails.settings import details_settings


@settings.built_from_settings
def dependencies() -> Dependencies:
    """DynamoDB, and Cognito for the email fallback (their libraries load here, on first use)."""
    from covidtracer.contactdetails.repository import AccountEmailsFromUsers, DynamoContactDetails

    config = details_settings()
    return Dependencies(
        details=DynamoContactDetails(config.tables.personal_details),
        emails=AccountEmailsFromUsers(config.tables.users, config.user_pool_id, config.aws),
    )
