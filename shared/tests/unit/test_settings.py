from __future__ import annotations

import json

import pytest

from covidtracer.config import SettingsError
from covidtracer.contactdetails.settings import DetailsSettings
from covidtracer.enfkeys.settings import EnfSettings
from covidtracer.nctsexport.settings import ExportSettings
from covidtracer.signin.settings import AuthSettings

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
    "FCM_SERVICE_ACCOUNT_SECRET_ID": "arn:fcm",
}
ENF = {
    "DATABASE_URL": "postgresql://db/enf",
    "ENF_TOKEN_SIGNING_SECRET_ID": "arn:token",
    "ENF_CODE_HASH_SECRET_ID": "arn:code",
    "SMS_ACCOUNT_SID": "AC1",
    "SMS_AUTH_TOKEN_SECRET_ID": "arn:sms",
    "ENF_EXPORTS_BUCKET": "exports",
    "EXPORT_SIGNING_KEY_ID": "key",
    "ENF_CERTIFICATE_SIGNING_KEY_ID": "certificate-key",
    "ENF_REVISION_TOKEN_KEY_ID": "arn:revision-key",
    "ENF_APPS_SECRET_ID": "arn:apps",
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


@pytest.mark.parametrize(
    ("raw", "ok"), [("30000", True), ("50", False), ("60001", False), ("x", False)]
)
def test_numbers_are_checked_against_their_range(raw: str, ok: bool) -> None:
    env = {**ENF, "DATABASE_QUERY_TIMEOUT_MS": raw}
    if ok:
        assert EnfSettings.from_env(env).database.query_timeout_ms == int(raw)
    else:
        with pytest.raises(SettingsError, match="DATABASE_QUERY_TIMEOUT_MS"):
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
            "PERSONAL_DETAILS_STREAM_ARN": STREAM_ARN,
        }
    )
    assert settings.user_details_bucket == "bucket"
    assert settings.personal_details_stream_arn == STREAM_ARN


def test_sign_in_settings_default_to_cognito_and_the_documented_limits() -> None:
    sign_in = DetailsSettings.from_env(DETAILS).sign_in
    assert sign_in.cognito_gateway == "aws"
    assert sign_in.verify_tokens_in_app is False
    assert sign_in.session_validity_seconds == 300
    assert sign_in.limit_per_email == 5
    assert (sign_in.email_guard_after, sign_in.guarded_per_day) == (1, 3)
    assert sign_in.limit_window_seconds == 900


def test_sign_in_settings_are_validated() -> None:
    with pytest.raises(SettingsError) as caught:
        DetailsSettings.from_env(
            {
                **DETAILS,
                "STAGE": "prod",
                "COGNITO_GATEWAY": "local",
                "VERIFY_TOKENS_IN_APP": "maybe",
                "AUTH_SESSION_VALIDITY_MINUTES": "60",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "COGNITO_GATEWAY=local is only for the local stage" in problems
    assert "VERIFY_TOKENS_IN_APP must be true or false" in problems
    assert "AUTH_SESSION_VALIDITY_MINUTES must be between 3 and 15" in problems
    with pytest.raises(SettingsError):
        DetailsSettings.from_env({**DETAILS, "COGNITO_GATEWAY": "emulator"})


def test_enf_api_defaults_follow_the_design() -> None:
    settings = EnfSettings.from_env(ENF)
    assert settings.tokens.access_token_minutes == 60
    assert settings.tokens.nonce_ttl_seconds == 3600
    assert settings.tokens.code_ttl_hours == 24
    assert settings.keys.max_keys_per_upload == 30  # Google's limit (CLIENTS.md)
    assert settings.keys.max_keys_per_start_interval == 3
    assert settings.keys.max_key_age_days == 15
    assert settings.keys.retention_days == 14
    assert settings.sms.provider == "twilio"
    assert "CONTACT_UPLOAD" in settings.metrics_intervals
    # The plugin's four events (CLIENTS.md): LOG_ERROR is its only failure report.
    assert {"CONTACT_NOTIFICATION", "DAILY_ACTIVE_TRACE", "LOG_ERROR", "CALLBACK_REQUEST"} <= set(
        settings.metrics_intervals
    )
    assert settings.export.window_minutes == 60
    assert settings.client_config.exposure_parameter == "/covidtracer/local/enf/exposure-config"
    assert settings.client_config.cache_seconds == 60
    assert settings.export.pad_files  # Google's padding unless a stage turns it off
    assert settings.log_level == "INFO"
    assert EnfSettings.from_env({**ENF, "LOG_LEVEL": "warning"}).log_level == "WARNING"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"ENF_KEY_RETENTION_DAYS": "9"}, "ENF_KEY_RETENTION_DAYS must be at least 10"),
        ({"ENF_MAX_KEYS_PER_UPLOAD": "31"}, "ENF_MAX_KEYS_PER_UPLOAD must be between 1 and 30"),
        ({"SMS_PROVIDER": "pigeon"}, "SMS_PROVIDER must be one of"),
        ({"SMS_ACCOUNT_SID": ""}, "SMS_ACCOUNT_SID and SMS_AUTH_TOKEN_SECRET_ID are required"),
        ({"ENF_SMS_TEMPLATE": "no code here"}, "must contain {code}"),
        ({"ENF_METRICS_INTERVALS": '{"A": "soon"}'}, "ENF_METRICS_INTERVALS must be"),
        ({"ENF_NOTIFICATION_CONFIG": "[1]"}, "ENF_NOTIFICATION_CONFIG must be a JSON object"),
        ({"ENF_CODE_HASH_SECRET_ID": ""}, "ENF_CODE_HASH_SECRET_ID is required"),
        ({"ENF_EXPORT_WINDOW_MINUTES": "7"}, "ENF_EXPORT_WINDOW_MINUTES must divide a day"),
        ({"ENF_EXPORT_WINDOW_MINUTES": "0"}, "ENF_EXPORT_WINDOW_MINUTES must be between 1"),
        ({"ENF_EXPOSURE_CONFIG_PARAMETER": "x"}, "must be a parameter path"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL must be one of DEBUG, INFO"),
        ({"ENF_EXPORT_PAD_FILES": "maybe"}, "ENF_EXPORT_PAD_FILES must be true or false"),
    ],
)
def test_enf_api_settings_are_validated(overrides: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        EnfSettings.from_env({**ENF, **overrides})
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_deployed_stages_need_each_listed_platforms_attestation_setup() -> None:
    with pytest.raises(SettingsError) as caught:
        EnfSettings.from_env({**ENF, "STAGE": "dev", "ATTESTATION_PLATFORMS": "ios,android"})
    problems = "\n".join(caught.value.problems)
    assert "ANDROID_ATTESTATION_ROOT (or ANDROID_ATTESTATION_ROOT_PEM) is required" in problems
    assert "APPLE_DEVICECHECK_KEY_SECRET_ID are required" in problems
    aws_sms = EnfSettings.from_env(
        {**ENF, "SMS_PROVIDER": "aws", "SMS_ACCOUNT_SID": "", "SMS_AUTH_TOKEN_SECRET_ID": ""}
    )
    assert aws_sms.sms.provider == "aws"


def test_the_android_root_is_a_certificate_shipped_in_the_package_chosen_by_a_short_name() -> None:
    """Lambda's environment holds 4 KB in all: an RSA-4096 root (about 1.9 KB of PEM) does not
    belong in it. Google's roots are public, so the package ships them and a name picks one."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    env = {**ENF, "STAGE": "dev", "ATTESTATION_PLATFORMS": "android"}
    settings = EnfSettings.from_env({**env, "ANDROID_ATTESTATION_ROOT": "gts-root-r1"})
    pem = settings.attestation.android_trusted_root()
    assert pem is not None
    root = x509.load_pem_x509_certificate(pem.encode())
    # GTS Root R1, the root of the SafetyNet attestation chain (attest.android.com).
    assert hashlib.sha256(root.public_bytes(Encoding.DER)).hexdigest() == (
        "d947432abde7b7fa90fc2e6b59101b1280e0e1c7e4e40fa3c6887fff57a7f4cf"
    )
    with pytest.raises(SettingsError) as caught:
        EnfSettings.from_env({**env, "ANDROID_ATTESTATION_ROOT": "../../etc/passwd"})
    assert any("ANDROID_ATTESTATION_ROOT must be one of" in p for p in caught.value.problems)


STREAM_ARN = "arn:aws:dynamodb:ap-southeast-2:1:table/pd/stream/2021-10-04T00:00:00.000"


def test_export_settings_need_a_stream_arn() -> None:
    env = {
        **TABLES,
        "PERSONAL_DATA_UPDATES_QUEUE_URL": "https://sqs.example/1/q",
        "USER_DETAILS_BUCKET": "bucket",
        "USER_DETAILS_KMS_KEY_ID": "arn:key",
    }
    with pytest.raises(SettingsError, match="PERSONAL_DETAILS_STREAM_ARN is required"):
        ExportSettings.from_env(env)
    with pytest.raises(SettingsError, match="must be a DynamoDB stream ARN"):
        ExportSettings.from_env({**env, "PERSONAL_DETAILS_STREAM_ARN": "table/pd"})
