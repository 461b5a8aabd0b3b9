"""Typed settings for every service, each declared once with ``config.setting`` (environment
name, type, default and bounds on the field), read once and validated eagerly.

Each service has one frozen dataclass built by ``from_env``; reading collects every problem
(missing variable, bad number, bad URL, a rule broken for the stage) and raises one
``SettingsError`` listing them all (``covidtracer.config``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from covidtracer import config
from covidtracer.config import Env, SettingsError, setting

__all__ = ["SettingsError"]

STAGES = config.STAGES
APP_CLIENT_PLATFORMS = ("ios", "android", "web")
COGNITO_GATEWAYS = ("aws", "local")


_log_level = config.log_level


def _client_ids(env: Env, name: str, default: Any) -> dict[str, str]:
    """A JSON object of strings, e.g. ``APP_CLIENT_IDS={"ios": "…", "android": "…"}``."""
    raw = env.text(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        env.problems.append(f"{name} must be a JSON object")
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        env.problems.append(f"{name} must be a JSON object of non-empty strings")
        return {}
    if missing := [k for k in APP_CLIENT_PLATFORMS if k not in value]:
        env.problems.append(f"{name} lacks {', '.join(missing)}")
    return dict(value)


def _region(env: Env, name: str, default: str) -> str:
    return env.text(name, env.raw("AWS_DEFAULT_REGION") or default)


@dataclass(frozen=True, kw_only=True)
class AwsSettings:
    """Where the AWS APIs are. ``endpoint_url`` is set only for the local stack (moto)."""

    region: str = setting("AWS_REGION", "ap-southeast-2", parse=_region)
    # Cognito cannot send through SES in Sydney, so SES lives in another region.
    ses_region: str = setting("SES_REGION", "us-west-2")
    endpoint_url: str | None = setting("AWS_ENDPOINT_URL", None, url=True)

    def check(self, env: Env) -> None:
        if env.stage == "prod" and self.endpoint_url:
            env.problems.append("AWS_ENDPOINT_URL must not be set in prod")


@dataclass(frozen=True, kw_only=True)
class Tables:
    """DynamoDB table names (physical names come from the data stack's outputs)."""

    users: str = setting("USERS_TABLE")
    personal_details: str = setting("PERSONAL_DETAILS_TABLE")
    exposure_events: str = setting("EXPOSURE_EVENTS_TABLE")
    rate_limits: str = setting("RATE_LIMITS_TABLE")
    sign_in_sessions: str = setting("SIGN_IN_SESSIONS_TABLE")


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """PostgreSQL: a URL (local, CI), or RDS Proxy host + Secrets Manager credentials (AWS)."""

    url: str | None = setting("DATABASE_URL", None)
    host: str | None = setting("DATABASE_HOST", None)
    name: str = setting("DATABASE_NAME", "enf")
    secret_id: str | None = setting("DATABASE_SECRET_ID", None)
    connect_timeout_seconds: int = setting("DATABASE_CONNECT_TIMEOUT", 5, minimum=1, maximum=60)
    statement_timeout_ms: int = setting("DATABASE_STATEMENT_TIMEOUT_MS", 30_000, minimum=100)

    def check(self, env: Env) -> None:
        if not self.url and not (self.host and self.secret_id):
            env.problems.append(
                "set DATABASE_URL, or DATABASE_HOST and DATABASE_SECRET_ID (RDS Proxy)"
            )


@dataclass(frozen=True, kw_only=True)
class PartnerSettings:
    """Base URLs of external parties; the local stack points them at its stand-ins."""

    ncts_base_url: str = setting("NCTS_BASE_URL", url=True)
    ncts_timeout_seconds: int = setting("NCTS_TIMEOUT_SECONDS", 5, minimum=1, maximum=25)
    # Retries after the first attempt, on connection errors and 5xx only. With the default
    # timeout, 3 attempts and the backoff still fit in API Gateway's 29 s.
    ncts_retries: int = setting("NCTS_RETRIES", 2, minimum=0, maximum=5)
    ncts_backoff_ms: int = setting("NCTS_BACKOFF_MS", 200, minimum=0, maximum=5_000)


@dataclass(frozen=True, kw_only=True)
class FcmSettings:
    """Firebase Cloud Messaging (HTTP v1). The secret holds the Google service-account JSON
    (``project_id``, ``client_email``, ``private_key``, ``token_uri``)."""

    base_url: str = setting("FCM_BASE_URL", "https://fcm.googleapis.com", url=True)
    service_account_secret_id: str = setting("FCM_SERVICE_ACCOUNT_SECRET_ID")
    timeout_seconds: int = setting("FCM_TIMEOUT_SECONDS", 5, minimum=1, maximum=25)


@dataclass(frozen=True, kw_only=True)
class DiarySettings:
    """Diary uploads (DESIGN §2.3)."""

    # Diary entries are kept 60 days (DESIGN §8): older ones never leave the backend.
    retention_days: int = setting("DIARY_RETENTION_DAYS", 60, minimum=1, maximum=365)
    # Older apps send the whole 60-day diary at once (CLIENTS.md): thousands of entries for a
    # heavy user. So the upload is bounded by size, as in AWS: Lambda takes a request of at
    # most 6 MB (API Gateway's own limit, 10 MB, is higher), ~30,000 typical entries.
    max_body_bytes: int = setting(
        "DIARY_MAX_BODY_BYTES", 6_000_000, minimum=100_000, maximum=6_000_000
    )
    # Phones' clocks drift; an entry a few minutes "in the future" is still a real visit.
    clock_skew_seconds: int = setting("DIARY_CLOCK_SKEW_SECONDS", 300, minimum=0, maximum=3600)
    # Consent-code guesses (codes NCTS refused) per source address and in all: a person
    # mistypes a code once or twice, and NCTS should never see a guessing run. Per address
    # generous, because a carrier-grade NAT puts many phones behind one.
    guesses_per_ip: int = setting("DIARY_GUESSES_PER_IP", 20, minimum=1)
    guesses_global: int = setting("DIARY_GUESSES_GLOBAL", 1_000, minimum=1)
    guess_window_seconds: int = setting(
        "DIARY_GUESS_WINDOW_SECONDS", 3_600, minimum=60, maximum=86_400
    )


@dataclass(frozen=True, kw_only=True)
class ExposureEventSettings:
    """Exposure events of interest, their feed, and the callback requests they allow."""

    feed_active_days: int = setting("FEED_ACTIVE_DAYS", 14, minimum=1, maximum=60)
    feed_object_key: str = setting("FEED_OBJECT_KEY", "current-exposure-events.json")
    feed_max_age_seconds: int = setting("FEED_MAX_AGE_SECONDS", 300, minimum=0, maximum=86_400)
    # Per phone: a person asks for a call a few times at most. Per IP: generous, because
    # NZ mobile networks put many phones behind one carrier-grade NAT address.
    callback_limit_per_phone: int = setting("CALLBACK_LIMIT_PER_PHONE", 5, minimum=1)
    callback_phone_window_seconds: int = setting(
        "CALLBACK_PHONE_WINDOW_SECONDS", 86_400, minimum=1, maximum=604_800
    )
    callback_limit_per_ip: int = setting("CALLBACK_LIMIT_PER_IP", 100, minimum=1)
    callback_ip_window_seconds: int = setting(
        "CALLBACK_IP_WINDOW_SECONDS", 3_600, minimum=1, maximum=604_800
    )


def _minutes_as_seconds(env: Env, name: str, default: int) -> int:
    """Cognito's AuthSessionValidity is set in minutes (3 to 15); the code counts seconds."""
    return 60 * env.integer(name, default // 60, minimum=3, maximum=15)


@dataclass(frozen=True, kw_only=True)
class SignInSettings:
    """Passwordless sign-in (DESIGN §2.1): which Cognito, how long a code lives, throttles."""

    # ``aws``: Cognito runs CUSTOM_AUTH and calls the trigger Lambdas. ``local``: the local
    # custom-auth driver runs the same triggers itself (moto runs no triggers).
    cognito_gateway: str = setting("COGNITO_GATEWAY", "aws", choices=COGNITO_GATEWAYS)
    # Under ``chalice local`` no API Gateway authorizer checks bearer tokens, so the app
    # verifies them itself; behind API Gateway the authorizer's claims are used.
    verify_tokens_in_app: bool = setting("VERIFY_TOKENS_IN_APP", False)
    # Cognito's AuthSessionValidity: how long one emailed code stays usable.
    session_validity_seconds: int = setting(
        "AUTH_SESSION_VALIDITY_MINUTES", 300, parse=_minutes_as_seconds
    )
    # Throttles on initiate: each sends an email, so they bound mail-bombing and guessing.
    limit_per_email: int = setting("SIGN_IN_LIMIT_PER_EMAIL", 5, minimum=1)
    limit_per_ip: int = setting("SIGN_IN_LIMIT_PER_IP", 30, minimum=1)
    limit_window_seconds: int = setting(
        "SIGN_IN_LIMIT_WINDOW_SECONDS", 900, minimum=1, maximum=86_400
    )
    # Initiate answers no faster than this whether or not the account existed, so its
    # timing does not tell a caller who has an account.
    initiate_min_duration_ms: int = setting(
        "SIGN_IN_MIN_DURATION_MS", 600, minimum=0, maximum=10_000
    )

    def check(self, env: Env) -> None:
        if env.stage != "local" and self.cognito_gateway == "local":
            # The local driver issues tokens through a password flow; only moto may see it.
            env.problems.append("COGNITO_GATEWAY=local is only for the local stage")


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    """The Cognito trigger Lambdas (``services/auth``)."""

    stage: str
    aws: AwsSettings
    tables: Tables
    email_sender: str = setting("EMAIL_SENDER")
    post_authentication_queue_url: str = setting("POST_AUTHENTICATION_QUEUE_URL", url=True)
    log_level: str = setting("LOG_LEVEL", "INFO", parse=_log_level)

    def check(self, env: Env) -> None:
        if self.email_sender and "@" not in self.email_sender:
            env.problems.append("EMAIL_SENDER must be an email address")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        return config.load(cls, "auth", environ)


@dataclass(frozen=True, kw_only=True)
class DetailsSettings:
    """The app API (``services/details``)."""

    stage: str
    aws: AwsSettings
    tables: Tables
    user_pool_id: str = setting("USER_POOL_ID")
    app_client_ids: Mapping[str, str] = setting("APP_CLIENT_IDS", parse=_client_ids)
    sign_in: SignInSettings
    feed_bucket: str = setting("FEED_BUCKET")
    ncts_api_key_secret_id: str = setting("NCTS_API_KEY_SECRET_ID")
    partners: PartnerSettings
    log_level: str = setting("LOG_LEVEL", "INFO", parse=_log_level)
    fcm: FcmSettings
    diary: DiarySettings
    events: ExposureEventSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DetailsSettings:
        return config.load(cls, "details", environ)


@dataclass(frozen=True, kw_only=True)
class ExportSettings:
    """The NCTS personal-details export (``services/export``)."""

    stage: str
    aws: AwsSettings
    tables: Tables
    personal_data_updates_queue_url: str = setting("PERSONAL_DATA_UPDATES_QUEUE_URL", url=True)
    user_details_bucket: str = setting("USER_DETAILS_BUCKET")
    user_details_kms_key_id: str = setting("USER_DETAILS_KMS_KEY_ID")
    # Chalice reads the ARN from the environment when ``app.py`` is imported (the event source
    # mapping is made at deploy time); validated here so a stage without it fails loudly at
    # cold start too.
    personal_details_stream_arn: str = setting("PERSONAL_DETAILS_STREAM_ARN")
    log_level: str = setting("LOG_LEVEL", "INFO", parse=_log_level)

    def check(self, env: Env) -> None:
        arn = self.personal_details_stream_arn
        if arn and not (arn.startswith("arn:") and "/stream/" in arn):
            env.problems.append(
                f"PERSONAL_DETAILS_STREAM_ARN must be a DynamoDB stream ARN, got {arn!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExportSettings:
        return config.load(cls, "export", environ)


@dataclass(frozen=True, kw_only=True)
class AnalyticsSettings:
    """The services' own events (``covidtracer.analytics``), read by every service.

    Without ``ANALYTICS_STREAM_NAME`` the emitter is off (events are counted as dropped):
    analytics never stop a service from starting, so a problem here is not fatal either.
    """

    stage: str
    stream_name: str | None = setting("ANALYTICS_STREAM_NAME", None)
    # The release (from git) the deployment tags every function with (DESIGN §6).
    release_version: str = setting("RELEASE_VERSION", "unreleased")
    # Events held while Firehose is slow or down; beyond this they are dropped and counted.
    buffer_capacity: int = setting(
        "ANALYTICS_BUFFER_CAPACITY", 10_000, minimum=10, maximum=1_000_000
    )
    # PutRecordBatch attempts per batch (the first and its retries of failed records).
    max_attempts: int = setting("ANALYTICS_MAX_ATTEMPTS", 3, minimum=1, maximum=10)
    # How long a job or trigger waits at its end for its events to be sent; a request never
    # waits (its events go on the sender thread).
    flush_timeout_ms: int = setting("ANALYTICS_FLUSH_TIMEOUT_MS", 2_000, minimum=0, maximum=60_000)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AnalyticsSettings:
        # Never fatal: what could be read is used, the rest keeps its default.
        return config.read(cls, Env(environ))


@dataclass(frozen=True, kw_only=True)
class UsageReportSettings:
    """The daily usage report (``usage-report`` job): where events are and the report goes."""

    stage: str
    aws: AwsSettings
    bucket: str = setting("ANALYTICS_BUCKET")
    events_prefix: str = setting("ANALYTICS_EVENTS_PREFIX", "events/")
    reports_prefix: str = setting("USAGE_REPORT_PREFIX", "reports/usage/")
    # The Ministry measured each day from 1 pm to 1 pm New Zealand time.
    timezone: str = setting("USAGE_REPORT_TIMEZONE", "Pacific/Auckland")
    day_ends_at_hour: int = setting("USAGE_REPORT_DAY_ENDS_AT_HOUR", 13, minimum=0, maximum=23)
    # Report the window still open (the local stack, so a by-hand day shows at once);
    # otherwise the job reports the last closed window.
    include_open_window: bool = setting("USAGE_REPORT_INCLUDE_OPEN_WINDOW", False)
    log_level: str = setting("LOG_LEVEL", "INFO")

    def check(self, env: Env) -> None:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(self.timezone)
        except (ValueError, LookupError):
            env.problems.append(f"USAGE_REPORT_TIMEZONE {self.timezone!r} is not a known zone")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> UsageReportSettings:
        return config.load(cls, "usage-report", environ)


built_from_settings = config.cached
reset = config.reset


def _aws_from_env() -> AwsSettings:
    return config.load(AwsSettings, "aws")


aws_settings = config.cached(_aws_from_env)
auth_settings = config.cached(AuthSettings.from_env)
details_settings = config.cached(DetailsSettings.from_env)
export_settings = config.cached(ExportSettings.from_env)
analytics_settings = config.cached(AnalyticsSettings.from_env)
usage_report_settings = config.cached(UsageReportSettings.from_env)
