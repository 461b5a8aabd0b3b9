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
from covidtracer.logs import LEVELS as LOG_LEVELS

__all__ = ["SettingsError"]

STAGES = config.STAGES
APP_CLIENT_PLATFORMS = ("ios", "android", "web")
COGNITO_GATEWAYS = ("aws", "local")


def _log_level(env: Env, name: str, default: str) -> str:
    """``LOG_LEVEL``, one of `logs.LEVELS` in any case (default INFO); `logs.configure`
    applies it."""
    value = env.text(name, default).upper()
    if value not in LOG_LEVELS:
        env.problems.append(f"{name} must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value


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


ATTESTATION_VERIFIERS = ("ios", "android", "test")
SMS_PROVIDERS = ("twilio", "aws")
# Keys older than this cannot matter any more (the incubation period plus a margin), and a
# retention this short would delete keys phones have not downloaded yet.
MIN_KEY_RETENTION_DAYS = 10
# Google's key-server limit per upload: a phone hands over today's key plus 14 days, and a
# new key each time exposure notifications are switched off and on (CLIENTS.md).
MAX_KEYS_PER_UPLOAD_CEILING = 30


@dataclass(frozen=True, kw_only=True)
class EnfTokenSettings:
    """The ENF API's own JWTs, upload codes and registration nonces."""

    signing_secret_id: str = setting("ENF_TOKEN_SIGNING_SECRET_ID")
    code_hash_secret_id: str = setting("ENF_CODE_HASH_SECRET_ID")
    access_token_minutes: int = setting("ENF_ACCESS_TOKEN_MINUTES", 60, minimum=1, maximum=24 * 60)
    # A registration idle (never refreshed) this long is deleted by the cleanup job.
    refresh_token_days: int = setting("ENF_REFRESH_TOKEN_DAYS", 365, minimum=1, maximum=3650)
    nonce_ttl_seconds: int = setting("ENF_NONCE_TTL_SECONDS", 3600, minimum=60, maximum=86_400)
    code_ttl_hours: int = setting("ENF_CODE_TTL_HOURS", 24, minimum=1, maximum=72)
    upload_token_ttl_hours: int = setting("ENF_UPLOAD_TOKEN_TTL_HOURS", 24, minimum=1, maximum=72)
    verify_min_interval_seconds: int = setting(
        "ENF_VERIFY_MIN_INTERVAL_SECONDS", 1, minimum=0, maximum=3600
    )
    # 10 wrong guesses a day against 10^6 codes: brute force stays hopeless.
    verify_daily_failures: int = setting("ENF_VERIFY_DAILY_FAILURES", 10, minimum=1, maximum=1000)
    # Registrations are free, so per-registration limits alone do not bound guessing: these
    # count what a guesser controls (its address) and the service as a whole.
    # POST and PUT /register each count: 600 installs an hour behind one carrier NAT address
    # is a launch-day surge, not an attack.
    register_per_ip: int = setting("ENF_REGISTER_PER_IP", 1200, minimum=1)
    register_ip_window_seconds: int = setting(
        "ENF_REGISTER_IP_WINDOW_SECONDS", 3600, minimum=1, maximum=86_400
    )
    # 50 new registrations a second nationally: far above any surge NZ has seen.
    register_global: int = setting("ENF_REGISTER_GLOBAL", 3000, minimum=1)
    register_global_window_seconds: int = setting(
        "ENF_REGISTER_GLOBAL_WINDOW_SECONDS", 60, minimum=1, maximum=3600
    )
    # A person mistypes a code a few times; 100 wrong codes an hour from one address is
    # guessing. 600 an hour in all bounds a distributed guesser to ~14,400 a day (with 1,000
    # live codes of 10^6, about 14 lucky guesses a day at most), while everyone's wrong codes
    # together stay far below it.
    verify_failures_per_ip: int = setting("ENF_VERIFY_FAILURES_PER_IP", 100, minimum=1)
    verify_failures_global: int = setting("ENF_VERIFY_FAILURES_GLOBAL", 600, minimum=1)
    verify_failure_window_seconds: int = setting(
        "ENF_VERIFY_FAILURE_WINDOW_SECONDS", 3600, minimum=60, maximum=86_400
    )


@dataclass(frozen=True, kw_only=True)
class EnfKeySettings:
    """Key-upload rules (Google's key-server numbers) and key retention."""

    max_keys_per_upload: int = setting(
        "ENF_MAX_KEYS_PER_UPLOAD",
        MAX_KEYS_PER_UPLOAD_CEILING,
        minimum=1,
        maximum=MAX_KEYS_PER_UPLOAD_CEILING,
    )
    max_keys_per_start_interval: int = setting(
        "ENF_MAX_KEYS_PER_START_INTERVAL", 3, minimum=1, maximum=10
    )
    max_key_age_days: int = setting("ENF_MAX_KEY_AGE_DAYS", 15, minimum=1, maximum=30)
    max_symptom_onset_age_days: int = setting(
        "ENF_MAX_SYMPTOM_ONSET_AGE_DAYS", 28, minimum=1, maximum=60
    )
    retention_days: int = setting("ENF_KEY_RETENTION_DAYS", 14, minimum=1, maximum=60)

    def check(self, env: Env) -> None:
        if self.retention_days < MIN_KEY_RETENTION_DAYS:
            env.problems.append(
                f"ENF_KEY_RETENTION_DAYS must be at least {MIN_KEY_RETENTION_DAYS}, "
                f"got {self.retention_days}"
            )


@dataclass(frozen=True, kw_only=True)
class AttestationSettings:
    """Device attestation at ``PUT /register`` (and key upload), one verifier per platform."""

    platforms: tuple[str, ...] = setting(
        "ATTESTATION_PLATFORMS", ("ios", "android"), choices=ATTESTATION_VERIFIERS
    )
    android_package_name: str = setting("ANDROID_PACKAGE_NAME", "nz.govt.health.covidtracer")
    # The root certificate (PEM) the SafetyNet / Play Integrity chain must end at.
    android_root_pem: str | None = setting("ANDROID_ATTESTATION_ROOT_PEM", None)
    android_hostname: str = setting("ANDROID_ATTESTATION_HOSTNAME", "attest.android.com")
    android_max_age_seconds: int = setting("ANDROID_ATTESTATION_MAX_AGE_SECONDS", 600, minimum=10)
    apple_devicecheck_url: str = setting(
        "APPLE_DEVICECHECK_URL", "https://api.devicecheck.apple.com", url=True
    )
    apple_team_id: str | None = setting("APPLE_TEAM_ID", None)
    apple_key_id: str | None = setting("APPLE_KEY_ID", None)
    apple_key_secret_id: str | None = setting("APPLE_DEVICECHECK_KEY_SECRET_ID", None)

    def check(self, env: Env) -> None:
        if env.stage == "prod" and "test" in self.platforms:
            # The test verifier accepts any device; production must prove a real phone.
            env.problems.append("ATTESTATION_PLATFORMS must not include test in prod")
        if env.stage != "local":
            # Locally a platform may be listed unconfigured: its verifier then refuses devices.
            if "android" in self.platforms and not self.android_root_pem:
                env.problems.append("ANDROID_ATTESTATION_ROOT_PEM is required for android")
            if "ios" in self.platforms and not (
                self.apple_team_id and self.apple_key_id and self.apple_key_secret_id
            ):
                env.problems.append(
                    "APPLE_TEAM_ID, APPLE_KEY_ID and APPLE_DEVICECHECK_KEY_SECRET_ID are "
                    "required for ios"
                )


@dataclass(frozen=True, kw_only=True)
class SmsSettings:
    """The SMS provider for upload codes: a Twilio-style HTTP API or AWS End User Messaging."""

    provider: str = setting("SMS_PROVIDER", "twilio", choices=SMS_PROVIDERS)
    base_url: str = setting("SMS_BASE_URL", "https://api.twilio.com", url=True)
    account_sid: str | None = setting("SMS_ACCOUNT_SID", None)
    auth_token_secret_id: str | None = setting("SMS_AUTH_TOKEN_SECRET_ID", None)
    sender: str = setting("SMS_SENDER", "NZCOVID")
    timeout_seconds: int = setting("SMS_TIMEOUT_SECONDS", 5, minimum=1, maximum=25)
    message_template: str = setting(
        "ENF_SMS_TEMPLATE",
        "Your NZ COVID Tracer upload code is {code}. It expires in {hours} hours.",
    )

    def check(self, env: Env) -> None:
        if self.provider == "twilio" and not (self.account_sid and self.auth_token_secret_id):
            env.problems.append("SMS_ACCOUNT_SID and SMS_AUTH_TOKEN_SECRET_ID are required")
        if "{code}" not in self.message_template:
            env.problems.append("ENF_SMS_TEMPLATE must contain {code}")


MINUTES_PER_DAY = 1440


@dataclass(frozen=True, kw_only=True)
class EnfExportSettings:
    """The export job's file identity and discovery limits (DESIGN §4 "Export")."""

    # SignatureInfo of every file: phones look up the public key by (id, version); the id is
    # the one the health authority registered with Apple and Google (NZ's MCC is 530).
    verification_key_id: str = setting("ENF_EXPORT_KEY_ID", "530")
    verification_key_version: str = setting("ENF_EXPORT_KEY_VERSION", "v1")
    region: str = setting("ENF_EXPORT_REGION", "NZ")
    # DIGEST in AWS (RAW caps messages at 4096 bytes). The local stack says RAW: moto 5.2
    # ignores MessageType and hashes what it is sent, so a digest would be hashed twice.
    kms_message_type: str = setting(
        "ENF_EXPORT_KMS_MESSAGE_TYPE", "DIGEST", choices=("DIGEST", "RAW")
    )
    # Deflate level of the zips: 1 is ~3x faster than 6 for a few % larger files.
    compression_level: int = setting("ENF_EXPORT_COMPRESSION_LEVEL", 1, minimum=0, maximum=9)
    # Google's padding: a file under 1000 + 0-100 keys is filled with deterministic fake
    # keys, so its size does not tell how many people reported (DESIGN §8). On unless a stage
    # turns it off (the local stack, whose tests read back exactly what they upload).
    pad_files: bool = setting("ENF_EXPORT_PAD_FILES", True)
    # Longer than a run takes, shorter than the 5-minute schedule.
    lease_seconds: int = setting("ENF_EXPORT_LEASE_SECONDS", 240, minimum=10, maximum=900)
    file_retention_days: int = setting("ENF_EXPORT_FILE_RETENTION_DAYS", 14, minimum=1, maximum=60)
    list_default_limit: int = setting("ENF_EXPORT_LIST_DEFAULT_LIMIT", 100, minimum=1, maximum=1000)
    list_max_limit: int = setting("ENF_EXPORT_LIST_MAX_LIMIT", 1000, minimum=1, maximum=10_000)
    # Length of the delta windows: an upload is listed within one window plus one 5-minute
    # run, and its upload time is known to an observer only to within one window. One hour
    # by default: Google's reference server truncates upload times to the hour for that
    # privacy reason, and phones check every few hours, so a shorter window would only
    # reveal more. Each delta holds the day so far and supersedes the last, so the discovery
    # bounds (15 files for a new phone, 2 per 3-hourly check) hold for any length. The local
    # stack uses 1 minute, so a developer's upload is listed within minutes.
    window_minutes: int = setting("ENF_EXPORT_WINDOW_MINUTES", 60, minimum=1, maximum=1440)

    def check(self, env: Env) -> None:
        if self.window_minutes > 0 and MINUTES_PER_DAY % self.window_minutes:
            # Windows are cut from midnight UTC: they must tile the day exactly.
            env.problems.append(
                f"ENF_EXPORT_WINDOW_MINUTES must divide a day ({MINUTES_PER_DAY} minutes), "
                f"got {self.window_minutes}"
            )
        if self.file_retention_days < MIN_KEY_RETENTION_DAYS:
            env.problems.append(
                f"ENF_EXPORT_FILE_RETENTION_DAYS must be at least {MIN_KEY_RETENTION_DAYS}"
            )
        if self.list_default_limit > self.list_max_limit:
            env.problems.append(
                "ENF_EXPORT_LIST_DEFAULT_LIMIT must not exceed ENF_EXPORT_LIST_MAX_LIMIT"
            )


def _parameter(kind: str) -> config.Parser:
    """A Parameter Store path, defaulting to the stage's own; ``-`` means none is read."""

    def parse(env: Env, name: str, default: Any) -> str | None:
        value = env.text(name, f"/covidtracer/{env.stage}/enf/{kind}-config")
        if value == "-":
            return None
        if not value.startswith("/"):
            env.problems.append(f"{name} must be a parameter path (/…) or -")
        return value

    return parse


@dataclass(frozen=True, kw_only=True)
class EnfClientConfigSettings:
    """Where an operator keeps the stage's exposure configuration and notification settings
    (Parameter Store, one JSON document each), and how long a Lambda keeps what it read.
    A parameter that does not exist means the stage default (``covidtracer.enf.
    client_config_store``); ``-`` means none is read at all."""

    exposure_parameter: str | None = setting(
        "ENF_EXPOSURE_CONFIG_PARAMETER", None, parse=_parameter("exposure")
    )
    notification_parameter: str | None = setting(
        "ENF_NOTIFICATION_CONFIG_PARAMETER", None, parse=_parameter("notification")
    )
    # A minute: an operator's change reaches every phone's next check, at one Parameter Store
    # read per document per minute per warm Lambda.
    cache_seconds: int = setting("ENF_CLIENT_CONFIG_CACHE_SECONDS", 60, minimum=0, maximum=3600)


# The metric events (COVID Green's names) and how often one registration may send each. The
# exposure-notification plugin sends the first four (CLIENTS.md): LOG_ERROR is its only
# report that an exposure check failed, so refusing it would hide every such failure.
DEFAULT_METRICS_INTERVALS: Mapping[str, int] = {
    "CONTACT_NOTIFICATION": 3600,
    "DAILY_ACTIVE_TRACE": 86_400,
    "LOG_ERROR": 3600,
    "CALLBACK_REQUEST": 3600,
    "CONTACT_UPLOAD": 86_400,
    "CALLBACK_OPTIN": 3600,
    "UPLOAD_VERIFICATION_FAILED": 60,
    "CHECK_IN": 3600,
}


def _intervals(env: Env, name: str, default: Mapping[str, int]) -> Mapping[str, int]:
    if env.raw(name) is None:
        return dict(default)
    value = env.json_object(name)
    if value is None:
        env.problems.pop()  # one message for every way of being wrong
    if value is None or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in value.items()
    ):
        env.problems.append(f"{name} must be a JSON object of event names to whole seconds")
        return dict(default)
    return dict(value)


def _json_document(env: Env, name: str, default: Any) -> str | None:
    return env.raw(name) if env.json_object(name) is not None else None


@dataclass(frozen=True, kw_only=True)
class EnfSettings:
    """The Exposure Notification key server (``services/enf``)."""

    stage: str
    aws: AwsSettings
    database: DatabaseSettings
    exports_bucket: str = setting("ENF_EXPORTS_BUCKET")
    export_signing_key_id: str = setting("EXPORT_SIGNING_KEY_ID")
    ncts_api_key_secret_id: str = setting("NCTS_API_KEY_SECRET_ID")
    partners: PartnerSettings
    log_level: str = setting("LOG_LEVEL", "INFO", parse=_log_level)
    tokens: EnfTokenSettings
    keys: EnfKeySettings
    attestation: AttestationSettings
    sms: SmsSettings
    export: EnfExportSettings
    # Per-registration minimum seconds between two metrics of one event; unlisted events
    # are refused. JSON object, e.g. {"CONTACT_UPLOAD": 86400}.
    metrics_intervals: Mapping[str, int] = setting(
        "ENF_METRICS_INTERVALS", DEFAULT_METRICS_INTERVALS, parse=_intervals
    )
    callback_interval_seconds: int = setting("ENF_CALLBACK_INTERVAL_SECONDS", 3600, minimum=0)
    # The stage's default documents served to phones (None: the ones shipped in the package);
    # an operator's document in Parameter Store (``client_config``) takes their place.
    exposure_config_json: str | None = setting("ENF_EXPOSURE_CONFIG", None, parse=_json_document)
    notification_config_json: str | None = setting(
        "ENF_NOTIFICATION_CONFIG", None, parse=_json_document
    )
    client_config: EnfClientConfigSettings

    @property
    def attestation_platforms(self) -> tuple[str, ...]:
        return self.attestation.platforms

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EnfSettings:
        return config.load(cls, "enf", environ)


built_from_settings = config.cached
reset = config.reset


def _aws_from_env() -> AwsSettings:
    return config.load(AwsSettings, "aws")


aws_settings = config.cached(_aws_from_env)
auth_settings = config.cached(AuthSettings.from_env)
details_settings = config.cached(DetailsSettings.from_env)
export_settings = config.cached(ExportSettings.from_env)
enf_settings = config.cached(EnfSettings.from_env)
analytics_settings = config.cached(AnalyticsSettings.from_env)
usage_report_settings = config.cached(UsageReportSettings.from_env)
