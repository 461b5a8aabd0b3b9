from __future__ import annotations

import json

import pytest

from covidtracer.settings import (
    AuthSettings,
    DetailsSettings,
    EnfSettings,
    ExportSettings,
    SettingsError,
)

TABLES = {
    "USERS_TABLE": "users",
    "PERSONAL_DETAILS_TABLE": "details",
    "EXPOSURE_EVENTS_TABLE": "events",
    "RATE_LIMITS_TABLE": "limits",
    "SIGN_IN_SESSIONS_TABLE": "sessions",
}
DETAILS = {
    **TABLES,
    "USER_POOL_ID": "pool",
    "FEED_BUCKET": "feed",
    "APP_CLIENT_IDS": json.dumps({"ios": "i", "android": "a", "web": "w"}),
    "NCTS_API_KEY_SECRET_ID": "arn:secret",
    "NCTS_BASE_URL": "https://ncts.example.nz",
}
ENF = {
    "DATABASE_URL": "postgresql://db/enf",
    "ENF_TOKEN_SIGNING_SECRET_ID": "arn:token",
    "ENF_CODE_HASH_SECRET_ID": "arn:code",
    "SMS_ACCOUNT_SID": "AC1",
    "SMS_AUTH_TOKEN_SECRET_ID": "arn:sms",
    "ENF_EXPORTS_BUCKET": "exports",
    "EXPORT_SIGNING_KEY_ID": "key",
    "NCTS_API_KEY_SECRET_ID": "arn:secret",
    "NCTS_BASE_URL": "https://ncts.example.nz",
}


def test_details_settings_read_every_value_with_regional_defaults() -> None:
    settings = DetailsSettings.from_env(DETAILS)
    assert settings.stage == "local"
    assert settings.aws.region == "ap-southeast-2"
    assert settings.aws.ses_region == "us-west-2"
    assert settings.aws.endpoint_url is None
    assert settings.tables.personal_details == "details"
    assert settings.app_client_ids == {"ios": "i", "android": "a", "web": "w"}
    assert settings.partners.ncts_timeout_seconds == 5


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        DetailsSettings.from_env(
            {"STAGE": "qa", "NCTS_BASE_URL": "ftp://x", "NCTS_TIMEOUT_SECONDS": "soon"}
        )
    problems = "\n".join(caught.value.problems)
    for expected in (
        "STAGE must be one of",
        "USERS_TABLE is required",
        "USER_POOL_ID is required",
        "APP_CLIENT_IDS is required",
        "NCTS_BASE_URL must be an http(s) URL",
        "NCTS_TIMEOUT_SECONDS must be a whole number",
    ):
        assert expected in problems
    assert len(caught.value.problems) >= 10


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json", "must be a JSON object"),
        (json.dumps(["ios"]), "JSON object of non-empty strings"),
        (json.dumps({"ios": "i", "web": "w"}), "lacks android"),
        (json.dumps({"ios": "", "android": "a", "web": "w"}), "non-empty strings"),
    ],
)
def test_app_client_ids_must_name_every_platform(value: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        DetailsSettings.from_env({**DETAILS, "APP_CLIENT_IDS": value})


def test_prod_refuses_a_local_endpoint_and_the_test_attestation_verifier() -> None:
    env = {
        **ENF,
        "STAGE": "prod",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "ATTESTATION_PLATFORMS": "ios,android,test",
    }
    with pytest.raises(SettingsError) as caught:
        EnfSettings.from_env(env)
    assert any("AWS_ENDPOINT_URL must not be set in prod" in p for p in caught.value.problems)
    assert any("must not include test in prod" in p for p in caught.value.problems)


def test_the_test_verifier_is_allowed_outside_prod() -> None:
    settings = EnfSettings.from_env({**ENF, "STAGE": "staging", "ATTESTATION_PLATFORMS": "test"})
    assert settings.attestation_platforms == ("test",)


def test_enf_needs_a_database_url_or_an_rds_proxy_with_its_secret() -> None:
    without_url = {k: v for k, v in ENF.items() if k != "DATABASE_URL"}
    with pytest.raises(SettingsError, match="DATABASE_HOST and DATABASE_SECRET_ID"):
        EnfSettings.from_env(without_url)
    proxied = EnfSettings.from_env(
        {**without_url, "DATABASE_HOST": "proxy.example", "DATABASE_SECRET_ID": "arn:db"}
    )
    assert proxied.database.host == "proxy.example"
    assert proxied.database.name == "enf"


@pytest.mark.parametrize(("raw", "ok"), [("30000", True), ("50", False), ("x", False)])
def test_numbers_are_checked_against_their_range(raw: str, ok: bool) -> None:
    env = {**ENF, "DATABASE_STATEMENT_TIMEOUT_MS": raw}
    if ok:
        assert EnfSettings.from_env(env).database.statement_timeout_ms == int(raw)
    else:
        with pytest.raises(SettingsError, match="DATABASE_STATEMENT_TIMEOUT_MS"):
            EnfSettings.from_env(env)


def test_auth_settings_need_a_sender_address() -> None:
    env = {**TABLES, "EMAIL_SENDER": "no-reply", "POST_AUTHENTICATION_QUEUE_URL": "http://q/1"}
    with pytest.raises(SettingsError, match="EMAIL_SENDER must be an email address"):
        AuthSettings.from_env(env)


def test_export_settings_read_the_queue_bucket_and_key() -> None:
    settings = ExportSettings.from_env(
        {
            **TABLES,
            "PERSONAL_DATA_UPDATES_QUEUE_URL": "https://sqs.example/1/q",
            "USER_DETAILS_BUCKET": "bucket",
            "USER_DETAILS_KMS_KEY_ID": "arn:key",
        }
    )
    assert settings.user_details_bucket == "bucket"
