"""Contact details' production adapters, built once (``config.reset`` forgets them)."""

from __future__ import annotations

from covidtracer import config
from covidtracer.contactdetails.service import Dependencies
from covidtracer.contactdetails.settings import details_settings


@config.cached
def dependencies() -> Dependencies:
    """DynamoDB, and Cognito for the email fallback (their libraries load here, on first use)."""
    from covidtracer.contactdetails.repository import AccountEmailsFromUsers, DynamoContactDetails

    settings = details_settings()
    emails = AccountEmailsFromUsers(settings.tables.users, settings.user_pool_id)
    return Dependencies(DynamoContactDetails(settings.tables.personal_details), emails)
