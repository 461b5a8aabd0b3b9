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
class AwsServiceSettings(config.ServiceSettings):
    """What every service read: its stage, where the AWS APIs are, and its log level; each
    service's settings add their own fields (``SERVICE`` names it in problems)."""

    stage: str
    aws: AwsSettings
    log_level: str = setting("LOG_LEVEL", "INFO", parse=config.log_level)


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


built_from_settings = config.cached
reset = config.reset


def _aws_from_env() -> AwsSettings:
    return config.load(AwsSettings, "aws")


aws_settings = config.cached(_aws_from_env)
details_settings = config.cached(DetailsSettings.from_env)

# DetailsSettings.sign_in; imported last because signin.settings reads the core classes above.
from covidtracer.signin.settings import SignInSettings  # noqa: E402
