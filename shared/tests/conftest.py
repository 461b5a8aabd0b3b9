"""Fixtures the ENF tests of both shared tiers use."""

from __future__ import annotations

import pytest


@pytest.fixture
def enf_environ() -> dict[str, str]:
    """The least environment ``EnfSettings`` reads without a problem: names of secrets and
    partners that nothing in a test of this tier ever calls (no ``DATABASE_URL``)."""
    return {
        "ENF_EXPORTS_BUCKET": "exports",
        "EXPORT_SIGNING_KEY_ID": "key",
        "ENF_CERTIFICATE_SIGNING_KEY_ID": "certificate-key",
        "ENF_REVISION_TOKEN_KEY_ID": "arn:revision-key",
        "ENF_APPS_SECRET_ID": "arn:apps",
        "NCTS_API_KEY_SECRET_ID": "arn:ncts",
        "NCTS_BASE_URL": "http://127.0.0.1:9",
        "ENF_TOKEN_SIGNING_SECRET_ID": "arn:token",
        "ENF_CODE_HASH_SECRET_ID": "arn:code",
        "SMS_ACCOUNT_SID": "AC1",
        "SMS_AUTH_TOKEN_SECRET_ID": "arn:sms",
    }
