"""Typed settings for every service, read once from the environment and validated eagerly.

Each service has one frozen dataclass built by ``from_env``. Reading collects every problem
(missing variable, bad number, bad URL, a rule broken for the stage) and raises one
``SettingsError`` listing them all, so an operator fixes a stage's configuration in one pass
instead of one cold start per mistake.

Secrets are never settings values: a setting names the Secrets Manager secret, and the
adapter that needs it reads it at first use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlparse

from covidtracer.logs import LEVELS as LOG_LEVELS

STAGES = ("local", "dev", "staging", "prod")
APP_CLIENT_PLATFORMS = ("ios", "android", "web")
COGNITO_GATEWAYS = ("aws", "local")


class SettingsError(ValueError):
    """The environment does not describe a runnable service; ``problems`` lists every reason."""

    def __init__(self, service: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{service} settings are invalid:\n{lines}")


class _Env:
    """Reads typed values from an environment mapping, collecting problems instead of raising."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str | None = None) -> str:
        value = self._environ.get(name, "").strip()
        if value:
            return value
        if default is None:
            self.problems.append(f"{name} is required")
            return ""
        return default

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, minimum: int = 0, maximum: int = 2**31) -> int:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, got {raw!r}")
            return default
        if not minimum <= value <= maximum:
            self.problems.append(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def log_level(self) -> str:
        """``LOG_LEVEL``, one of `logs.LEVELS` (default INFO); `logs.configure` applies it."""
        value = self.text("LOG_LEVEL", "INFO").upper()
        if value not in LOG_LEVELS:
            self.problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
        return value

    def url(self, name: str, default: str | None = None) -> str:
        value = self.text(name, default)
        if value and not _is_http_url(value):
            self.problems.append(f"{name} must be an http(s) URL, got {value!r}")
        return value

    def optional_url(self, name: str) -> str | None:
        value = self.optional(name)
        if value is not None and not _is_http_url(value):
            self.problems.append(f"{name} must be an http(s) URL, got {value!r}")
        return value

    def mapping(self, name: str, required_keys: tuple[str, ...]) -> dict[str, str]:
        """A JSON object of strings, e.g. ``APP_CLIENT_IDS={"ios": "…", "android": "…"}``."""
        raw = self.text(name)
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            self.problems.append(f"{name} must be a JSON object")
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
        ):
            self.problems.append(f"{name} must be a JSON object of non-empty strings")
            return {}
        missing = [k for k in required_keys if k not in value]
        if missing:
            self.problems.append(f"{name} lacks {', '.join(missing)}")
        return dict(value)

    def stage(self) -> str:
        stage = self.text("STAGE", "local")
        if stage not in STAGES:
            self.problems.append(f"STAGE must be one of {', '.join(STAGES)}, got {stage!r}")
        return stage


def _is_http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


@dataclass(frozen=True)
class AwsSettings:
    """Where the AWS APIs are. ``endpoint_url`` is set only for the local stack (moto)."""

    region: str
    ses_region: str
    endpoint_url: str | None

    @classmethod
    def read(cls, env: _Env, stage: str) -> AwsSettings:
        region = env.text("AWS_REGION", env.optional("AWS_DEFAULT_REGION") or "ap-southeast-2")
        settings = cls(
            region=region,
            # Cognito cannot send through SES in Sydney, so SES lives in another region.
            ses_region=env.text("SES_REGION", "us-west-2"),
            endpoint_url=env.optional_url("AWS_ENDPOINT_URL"),
        )
        if stage == "prod" and settings.endpoint_url:
            env.problems.append("AWS_ENDPOINT_URL must not be set in prod")
        return settings


@dataclass(frozen=True)
class Tables:
    """DynamoDB table names (physical names come from the data stack's outputs)."""

    users: str
    personal_details: str
    exposure_events: str
    rate_limits: str
    sign_in_sessions: str

    @classmethod
    def read(cls, env: _Env) -> Tables:
        return cls(
            users=env.text("USERS_TABLE"),
            personal_details=env.text("PERSONAL_DETAILS_TABLE"),
            exposure_events=env.text("EXPOSURE_EVENTS_TABLE"),
            rate_limits=env.text("RATE_LIMITS_TABLE"),
            sign_in_sessions=env.text("SIGN_IN_SESSIONS_TABLE"),
        )


@dataclass(frozen=True)
class DatabaseSettings:
    """PostgreSQL: a URL (local, CI), or RDS Proxy host + Secrets Manager credentials (AWS)."""

    url: str | None
    host: str | None
    name: str
    secret_id: str | None
    connect_timeout_seconds: int
    statement_timeout_ms: int

    @classmethod
    def read(cls, env: _Env) -> DatabaseSettings:
        settings = cls(
            url=env.optional("DATABASE_URL"),
            host=env.optional("DATABASE_HOST"),
            name=env.text("DATABASE_NAME", "enf"),
            secret_id=env.optional("DATABASE_SECRET_ID"),
            connect_timeout_seconds=env.integer("DATABASE_CONNECT_TIMEOUT", 5, 1, 60),
            statement_timeout_ms=env.integer("DATABASE_STATEMENT_TIMEOUT_MS", 30_000, 100),
        )
        if not settings.url and not (settings.host and settings.secret_id):
            env.problems.append(
                "set DATABASE_URL, or DATABASE_HOST and DATABASE_SECRET_ID (RDS Proxy)"
            )
        return settings


@dataclass(frozen=True)
class PartnerSettings:
    """Base URLs of external parties; the local stack points them at its stand-ins."""

    ncts_base_url: str
    ncts_timeout_seconds: int
    # Retries after the first attempt, on connection errors and 5xx only. With the default
    # timeout, 3 attempts and the backoff still fit in API Gateway's 29 s.
    ncts_retries: int = 2
    ncts_backoff_ms: int = 200

    @classmethod
    def read(cls, env: _Env) -> PartnerSettings:
        return cls(
            ncts_base_url=env.url("NCTS_BASE_URL"),
            ncts_timeout_seconds=env.integer("NCTS_TIMEOUT_SECONDS", 5, 1, 25),
            ncts_retries=env.integer("NCTS_RETRIES", 2, 0, 5),
            ncts_backoff_ms=env.integer("NCTS_BACKOFF_MS", 200, 0, 5_000),
        )


@dataclass(frozen=True)
class FcmSettings:
    """Firebase Cloud Messaging (HTTP v1). The secret holds the Google service-account JSON
    (``project_id``, ``client_email``, ``private_key``, ``token_uri``)."""

    base_url: str
    service_account_secret_id: str
    timeout_seconds: int

    @classmethod
    def read(cls, env: _Env) -> FcmSettings:
        return cls(
            base_url=env.url("FCM_BASE_URL", "https://fcm.googleapis.com"),
            service_account_secret_id=env.text("FCM_SERVICE_ACCOUNT_SECRET_ID"),
            timeout_seconds=env.integer("FCM_TIMEOUT_SECONDS", 5, 1, 25),
        )


@dataclass(frozen=True)
class DiarySettings:
    """Diary uploads (DESIGN §2.3)."""

    # Diary entries are kept 60 days (DESIGN §8): older ones never leave the backend.
    retention_days: int = 60
    # Older apps send the whole 60-day diary at once (CLIENTS.md): thousands of entries for a
    # heavy user. So the upload is bounded by size, as in AWS: Lambda takes a request of at
    # most 6 MB (API Gateway's own limit, 10 MB, is higher), ~30,000 typical entries.
    max_body_bytes: int = 6_000_000
    # Phones' clocks drift; an entry a few minutes "in the future" is still a real visit.
    clock_skew_seconds: int = 300
    # Consent-code guesses (codes NCTS refused) per source address and in all: a person
    # mistypes a code once or twice, and NCTS should never see a guessing run. Per address
    # generous, because a carrier-grade NAT puts many phones behind one.
    guesses_per_ip: int = 20
    guesses_global: int = 1_000
    guess_window_seconds: int = 3_600

    @classmethod
    def read(cls, env: _Env) -> DiarySettings:
        return cls(
            retention_days=env.integer("DIARY_RETENTION_DAYS", 60, 1, 365),
            max_body_bytes=env.integer("DIARY_MAX_BODY_BYTES", 6_000_000, 100_000, 6_000_000),
            clock_skew_seconds=env.integer("DIARY_CLOCK_SKEW_SECONDS", 300, 0, 3600),
            guesses_per_ip=env.integer("DIARY_GUESSES_PER_IP", 20, 1),
            guesses_global=env.integer("DIARY_GUESSES_GLOBAL", 1_000, 1),
            guess_window_seconds=env.integer("DIARY_GUESS_WINDOW_SECONDS", 3_600, 60, 86_400),
        )


@dataclass(frozen=True)
class ExposureEventSettings:
    """Exposure events of interest, their feed, and the callback requests they allow."""

    feed_active_days: int = 14
    feed_object_key: str = "current-exposure-events.json"
    feed_max_age_seconds: int = 300
    # Per phone: a person asks for a call a few times at most. Per IP: generous, because
    # NZ mobile networks put many phones behind one carrier-grade NAT address.
    callback_limit_per_phone: int = 5
    callback_phone_window_seconds: int = 86_400
    callback_limit_per_ip: int = 100
    callback_ip_window_seconds: int = 3_600

    @classmethod
    def read(cls, env: _Env) -> ExposureEventSettings:
        return cls(
            feed_active_days=env.integer("FEED_ACTIVE_DAYS", 14, 1, 60),
            feed_object_key=env.text("FEED_OBJECT_KEY", "current-exposure-events.json"),
            feed_max_age_seconds=env.integer("FEED_MAX_AGE_SECONDS", 300, 0, 86_400),
            callback_limit_per_phone=env.integer("CALLBACK_LIMIT_PER_PHONE", 5, 1),
            callback_phone_window_seconds=env.integer(
                "CALLBACK_PHONE_WINDOW_SECONDS", 86_400, 1, 604_800
            ),
            callback_limit_per_ip=env.integer("CALLBACK_LIMIT_PER_IP", 100, 1),
            callback_ip_window_seconds=env.integer("CALLBACK_IP_WINDOW_SECONDS", 3_600, 1, 604_800),
        )


@dataclass(frozen=True)
class SignInSettings:
    """Passwordless sign-in (DESIGN §2.1): which Cognito, how long a code lives, throttles."""

    # ``aws``: Cognito runs CUSTOM_AUTH and calls the trigger Lambdas. ``local``: the local
    # custom-auth driver runs the same triggers itself (moto runs no triggers).
    cognito_gateway: str
    # Under ``chalice local`` no API Gateway authorizer checks bearer tokens, so the app
    # verifies them itself; behind API Gateway the authorizer's claims are used.
    verify_tokens_in_app: bool
    # Cognito's AuthSessionValidity: how long one emailed code stays usable.
    session_validity_seconds: int
    # Throttles on initiate: each sends an email, so they bound mail-bombing and guessing.
    limit_per_email: int
    limit_per_ip: int
    limit_window_seconds: int
    # Initiate answers no faster than this whether or not the account existed, so its
    # timing does not tell a caller who has an account.
    initiate_min_duration_ms: int

    @classmethod
    def read(cls, env: _Env, stage: str) -> SignInSettings:
        settings = cls(
            cognito_gateway=env.text("COGNITO_GATEWAY", "aws"),
            verify_tokens_in_app=env.flag("VERIFY_TOKENS_IN_APP", False),
            session_validity_seconds=60
            * env.integer("AUTH_SESSION_VALIDITY_MINUTES", 5, minimum=3, maximum=15),
            limit_per_email=env.integer("SIGN_IN_LIMIT_PER_EMAIL", 5, minimum=1),
            limit_per_ip=env.integer("SIGN_IN_LIMIT_PER_IP", 30, minimum=1),
            limit_window_seconds=env.integer(
                "SIGN_IN_LIMIT_WINDOW_SECONDS", 900, minimum=1, maximum=86_400
            ),
            initiate_min_duration_ms=env.integer(
                "SIGN_IN_MIN_DURATION_MS", 600, minimum=0, maximum=10_000
            ),
        )
        if settings.cognito_gateway not in COGNITO_GATEWAYS:
            env.problems.append(
                f"COGNITO_GATEWAY must be one of {', '.join(COGNITO_GATEWAYS)}, "
                f"got {settings.cognito_gateway!r}"
            )
        if stage != "local" and settings.cognito_gateway == "local":
            # The local driver issues tokens through a password flow; only moto may see it.
            env.problems.append("COGNITO_GATEWAY=local is only for the local stage")
        return settings


@dataclass(frozen=True)
class AuthSettings:
    """The Cognito trigger Lambdas (``services/auth``)."""

    stage: str
    aws: AwsSettings
    tables: Tables
    email_sender: str
    post_authentication_queue_url: str
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        env = _Env(os.environ if environ is None else environ)
        stage = env.stage()
        settings = cls(
            stage=stage,
            aws=AwsSettings.read(env, stage),
            tables=Tables.read(env),
            email_sender=env.text("EMAIL_SENDER"),
            post_authentication_queue_url=env.url("POST_AUTHENTICATION_QUEUE_URL"),
            log_level=env.log_level(),
        )
        if settings.email_sender and "@" not in settings.email_sender:
            env.problems.append("EMAIL_SENDER must be an email address")
        _raise_if_problems("auth", env)
        return settings


@dataclass(frozen=True)
class DetailsSettings:
    """The app API (``services/details``)."""

    stage: str
    aws: AwsSettings
    tables: Tables
    user_pool_id: str
    app_client_ids: Mapping[str, str]
    sign_in: SignInSettings
    feed_bucket: str
    ncts_api_key_secret_id: str
    partners: PartnerSettings
    log_level: str
    fcm: FcmSettings
    diary: DiarySettings
    events: ExposureEventSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DetailsSettings:
        env = _Env(os.environ if environ is None else environ)
        stage = env.stage()
        settings = cls(
            stage=stage,
            aws=AwsSettings.read(env, stage),
            tables=Tables.read(env),
            user_pool_id=env.text("USER_POOL_ID"),
            app_client_ids=env.mapping("APP_CLIENT_IDS", APP_CLIENT_PLATFORMS),
            sign_in=SignInSettings.read(env, stage),
            feed_bucket=env.text("FEED_BUCKET"),
            ncts_api_key_secret_id=env.text("NCTS_API_KEY_SECRET_ID"),
            partners=PartnerSettings.read(env),
            log_level=env.log_level(),
            fcm=FcmSettings.read(env),
            diary=DiarySettings.read(env),
            events=ExposureEventSettings.read(env),
        )
        _raise_if_problems("details", env)
        return settings


@dataclass(frozen=True)
class ExportSettings:
    """The NCTS personal-details export (``services/export``)."""

    stage: str
    aws: AwsSettings
    tables: Tables
    personal_data_updates_queue_url: str
    user_details_bucket: str
    user_details_kms_key_id: str
    personal_details_stream_arn: str
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExportSettings:
        env = _Env(os.environ if environ is None else environ)
        stage = env.stage()
        settings = cls(
            stage=stage,
            aws=AwsSettings.read(env, stage),
            tables=Tables.read(env),
            personal_data_updates_queue_url=env.url("PERSONAL_DATA_UPDATES_QUEUE_URL"),
            user_details_bucket=env.text("USER_DETAILS_BUCKET"),
            user_details_kms_key_id=env.text("USER_DETAILS_KMS_KEY_ID"),
            # Chalice reads the ARN from the environment when ``app.py`` is imported (the
            # event source mapping is made at deploy time); validated here so a stage
            # without it fails loudly at cold start too.
            personal_details_stream_arn=env.text("PERSONAL_DETAILS_STREAM_ARN"),
            log_level=env.log_level(),
        )
        arn = settings.personal_details_stream_arn
        if arn and not (arn.startswith("arn:") and "/stream/" in arn):
            env.problems.append(
                f"PERSONAL_DETAILS_STREAM_ARN must be a DynamoDB stream ARN, got {arn!r}"
            )
        _raise_if_problems("export", env)
        return settings


@dataclass(frozen=True)
class AnalyticsSettings:
    """The services' own events (``covidtracer.analytics``), read by every service.

    Without ``ANALYTICS_STREAM_NAME`` the emitter is off (events are counted as dropped):
    analytics never stop a service from starting, so a problem here is not fatal either.
    """

    stage: str
    stream_name: str | None
    release_version: str
    # Events held while Firehose is slow or down; beyond this they are dropped and counted.
    buffer_capacity: int
    # PutRecordBatch attempts per batch (the first and its retries of failed records).
    max_attempts: int
    # How long a job or trigger waits at its end for its events to be sent; a request never
    # waits (its events go on the sender thread).
    flush_timeout_ms: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AnalyticsSettings:
        env = _Env(os.environ if environ is None else environ)
        return cls(
            stage=env.stage(),
            stream_name=env.optional("ANALYTICS_STREAM_NAME"),
            # The release (from git) the deployment tags every function with (DESIGN §6).
            release_version=env.text("RELEASE_VERSION", "unreleased"),
            buffer_capacity=env.integer("ANALYTICS_BUFFER_CAPACITY", 10_000, 10, 1_000_000),
            max_attempts=env.integer("ANALYTICS_MAX_ATTEMPTS", 3, 1, 10),
            flush_timeout_ms=env.integer("ANALYTICS_FLUSH_TIMEOUT_MS", 2_000, 0, 60_000),
        )


@dataclass(frozen=True)
class UsageReportSettings:
    """The daily usage report (``usage-report`` job): where events are and the report goes."""

    stage: str
    aws: AwsSettings
    bucket: str
    events_prefix: str
    reports_prefix: str
    # The Ministry measured each day from 1 pm to 1 pm New Zealand time.
    timezone: str
    day_ends_at_hour: int
    # Report the window still open (the local stack, so a by-hand day shows at once);
    # otherwise the job reports the last closed window.
    include_open_window: bool
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> UsageReportSettings:
        env = _Env(os.environ if environ is None else environ)
        stage = env.stage()
        settings = cls(
            stage=stage,
            aws=AwsSettings.read(env, stage),
            bucket=env.text("ANALYTICS_BUCKET"),
            events_prefix=env.text("ANALYTICS_EVENTS_PREFIX", "events/"),
            reports_prefix=env.text("USAGE_REPORT_PREFIX", "reports/usage/"),
            timezone=env.text("USAGE_REPORT_TIMEZONE", "Pacific/Auckland"),
            day_ends_at_hour=env.integer("USAGE_REPORT_DAY_ENDS_AT_HOUR", 13, 0, 23),
            include_open_window=env.flag("USAGE_REPORT_INCLUDE_OPEN_WINDOW", False),
            log_level=env.text("LOG_LEVEL", "INFO"),
        )
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(settings.timezone)
        except (ValueError, LookupError):
            env.problems.append(f"USAGE_REPORT_TIMEZONE {settings.timezone!r} is not a known zone")
        _raise_if_problems("usage-report", env)
        return settings


ATTESTATION_VERIFIERS = ("ios", "android", "test")
SMS_PROVIDERS = ("twilio", "aws")
# Keys older than this cannot matter any more (the incubation period plus a margin), and a
# retention this short would delete keys phones have not downloaded yet.
MIN_KEY_RETENTION_DAYS = 10
# Google's key-server limit per upload: a phone hands over today's key plus 14 days, and a
# new key each time exposure notifications are switched off and on (CLIENTS.md).
MAX_KEYS_PER_UPLOAD_CEILING = 30


@dataclass(frozen=True)
class EnfTokenSettings:
    """The ENF API's own JWTs, upload codes and registration nonces."""

    signing_secret_id: str
    code_hash_secret_id: str
    access_token_minutes: int
    refresh_token_days: int
    nonce_ttl_seconds: int
    code_ttl_hours: int
    upload_token_ttl_hours: int
    verify_min_interval_seconds: int
    verify_daily_failures: int
    # Registrations are free, so per-registration limits alone do not bound guessing: these
    # count what a guesser controls (its address) and the service as a whole.
    register_per_ip: int
    register_ip_window_seconds: int
    register_global: int
    register_global_window_seconds: int
    verify_failures_per_ip: int
    verify_failures_global: int
    verify_failure_window_seconds: int

    @classmethod
    def read(cls, env: _Env) -> EnfTokenSettings:
        return cls(
            signing_secret_id=env.text("ENF_TOKEN_SIGNING_SECRET_ID"),
            code_hash_secret_id=env.text("ENF_CODE_HASH_SECRET_ID"),
            access_token_minutes=env.integer("ENF_ACCESS_TOKEN_MINUTES", 60, 1, 24 * 60),
            # A registration idle (never refreshed) this long is deleted by the cleanup job.
            refresh_token_days=env.integer("ENF_REFRESH_TOKEN_DAYS", 365, 1, 3650),
            nonce_ttl_seconds=env.integer("ENF_NONCE_TTL_SECONDS", 3600, 60, 86_400),
            code_ttl_hours=env.integer("ENF_CODE_TTL_HOURS", 24, 1, 72),
            upload_token_ttl_hours=env.integer("ENF_UPLOAD_TOKEN_TTL_HOURS", 24, 1, 72),
            verify_min_interval_seconds=env.integer("ENF_VERIFY_MIN_INTERVAL_SECONDS", 1, 0, 3600),
            # 10 wrong guesses a day against 10^6 codes: brute force stays hopeless.
            verify_daily_failures=env.integer("ENF_VERIFY_DAILY_FAILURES", 10, 1, 1000),
            # POST and PUT /register each count: 600 installs an hour behind one carrier
            # NAT address is a launch-day surge, not an attack.
            register_per_ip=env.integer("ENF_REGISTER_PER_IP", 1200, 1),
            register_ip_window_seconds=env.integer(
                "ENF_REGISTER_IP_WINDOW_SECONDS", 3600, 1, 86_400
            ),
            # 50 new registrations a second nationally: far above any surge NZ has seen.
            register_global=env.integer("ENF_REGISTER_GLOBAL", 3000, 1),
            register_global_window_seconds=env.integer(
                "ENF_REGISTER_GLOBAL_WINDOW_SECONDS", 60, 1, 3600
            ),
            # A person mistypes a code a few times; 100 wrong codes an hour from one address
            # is guessing. 600 an hour in all bounds a distributed guesser to ~14,400 a day
            # (with 1,000 live codes of 10^6, about 14 lucky guesses a day at most), while
            # everyone's wrong codes together stay far below it.
            verify_failures_per_ip=env.integer("ENF_VERIFY_FAILURES_PER_IP", 100, 1),
            verify_failures_global=env.integer("ENF_VERIFY_FAILURES_GLOBAL", 600, 1),
            verify_failure_window_seconds=env.integer(
                "ENF_VERIFY_FAILURE_WINDOW_SECONDS", 3600, 60, 86_400
            ),
        )


@dataclass(frozen=True)
class EnfKeySettings:
    """Key-upload rules (Google's key-server numbers) and key retention."""

    max_keys_per_upload: int
    max_keys_per_start_interval: int
    max_key_age_days: int
    max_symptom_onset_age_days: int
    retention_days: int

    @classmethod
    def read(cls, env: _Env) -> EnfKeySettings:
        settings = cls(
            max_keys_per_upload=env.integer(
                "ENF_MAX_KEYS_PER_UPLOAD",
                MAX_KEYS_PER_UPLOAD_CEILING,
                1,
                MAX_KEYS_PER_UPLOAD_CEILING,
            ),
            max_keys_per_start_interval=env.integer("ENF_MAX_KEYS_PER_START_INTERVAL", 3, 1, 10),
            max_key_age_days=env.integer("ENF_MAX_KEY_AGE_DAYS", 15, 1, 30),
            max_symptom_onset_age_days=env.integer("ENF_MAX_SYMPTOM_ONSET_AGE_DAYS", 28, 1, 60),
            retention_days=env.integer("ENF_KEY_RETENTION_DAYS", 14, 1, 60),
        )
        if settings.retention_days < MIN_KEY_RETENTION_DAYS:
            env.problems.append(
                f"ENF_KEY_RETENTION_DAYS must be at least {MIN_KEY_RETENTION_DAYS}, "
                f"got {settings.retention_days}"
            )
        return settings


@dataclass(frozen=True)
class AttestationSettings:
    """Device attestation at ``PUT /register`` (and key upload), one verifier per platform."""

    platforms: tuple[str, ...]
    android_package_name: str
    android_root_pem: str | None
    android_hostname: str
    android_max_age_seconds: int
    apple_devicecheck_url: str
    apple_team_id: str | None
    apple_key_id: str | None
    apple_key_secret_id: str | None

    @classmethod
    def read(cls, env: _Env, stage: str) -> AttestationSettings:
        platforms = tuple(
            p.strip() for p in env.text("ATTESTATION_PLATFORMS", "ios,android").split(",")
        )
        settings = cls(
            platforms=platforms,
            android_package_name=env.text("ANDROID_PACKAGE_NAME", "nz.govt.health.covidtracer"),
            # The root certificate (PEM) the SafetyNet / Play Integrity chain must end at.
            android_root_pem=env.optional("ANDROID_ATTESTATION_ROOT_PEM"),
            android_hostname=env.text("ANDROID_ATTESTATION_HOSTNAME", "attest.android.com"),
            android_max_age_seconds=env.integer("ANDROID_ATTESTATION_MAX_AGE_SECONDS", 600, 10),
            apple_devicecheck_url=env.url(
                "APPLE_DEVICECHECK_URL", "https://api.devicecheck.apple.com"
            ),
            apple_team_id=env.optional("APPLE_TEAM_ID"),
            apple_key_id=env.optional("APPLE_KEY_ID"),
            apple_key_secret_id=env.optional("APPLE_DEVICECHECK_KEY_SECRET_ID"),
        )
        unknown = set(platforms) - set(ATTESTATION_VERIFIERS)
        if unknown:
            env.problems.append(f"ATTESTATION_PLATFORMS has unknown {', '.join(sorted(unknown))}")
        if stage == "prod" and "test" in platforms:
            # The test verifier accepts any device; production must prove a real phone.
            env.problems.append("ATTESTATION_PLATFORMS must not include test in prod")
        if stage != "local":
            # Locally a platform may be listed unconfigured: its verifier then refuses devices.
            if "android" in platforms and not settings.android_root_pem:
                env.problems.append("ANDROID_ATTESTATION_ROOT_PEM is required for android")
            if "ios" in platforms and not (
                settings.apple_team_id and settings.apple_key_id and settings.apple_key_secret_id
            ):
                env.problems.append(
                    "APPLE_TEAM_ID, APPLE_KEY_ID and APPLE_DEVICECHECK_KEY_SECRET_ID are "
                    "required for ios"
                )
        return settings


@dataclass(frozen=True)
class SmsSettings:
    """The SMS provider for upload codes: a Twilio-style HTTP API or AWS End User Messaging."""

    provider: str
    base_url: str
    account_sid: str | None
    auth_token_secret_id: str | None
    sender: str
    timeout_seconds: int
    message_template: str

    @classmethod
    def read(cls, env: _Env) -> SmsSettings:
        settings = cls(
            provider=env.text("SMS_PROVIDER", "twilio"),
            base_url=env.url("SMS_BASE_URL", "https://api.twilio.com"),
            account_sid=env.optional("SMS_ACCOUNT_SID"),
            auth_token_secret_id=env.optional("SMS_AUTH_TOKEN_SECRET_ID"),
            sender=env.text("SMS_SENDER", "NZCOVID"),
            timeout_seconds=env.integer("SMS_TIMEOUT_SECONDS", 5, 1, 25),
            message_template=env.text(
                "ENF_SMS_TEMPLATE",
                "Your NZ COVID Tracer upload code is {code}. It expires in {hours} hours.",
            ),
        )
        if settings.provider not in SMS_PROVIDERS:
            env.problems.append(f"SMS_PROVIDER must be one of {', '.join(SMS_PROVIDERS)}")
        if settings.provider == "twilio" and not (
            settings.account_sid and settings.auth_token_secret_id
        ):
            env.problems.append("SMS_ACCOUNT_SID and SMS_AUTH_TOKEN_SECRET_ID are required")
        if "{code}" not in settings.message_template:
            env.problems.append("ENF_SMS_TEMPLATE must contain {code}")
        return settings


MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class EnfExportSettings:
    """The export job's file identity and discovery limits (DESIGN §4 "Export")."""

    # SignatureInfo of every file: phones look up the public key by (id, version); the id
    # is the one the health authority registered with Apple and Google (NZ's MCC is 530).
    verification_key_id: str
    verification_key_version: str
    region: str
    # DIGEST in AWS (RAW caps messages at 4096 bytes). The local stack says RAW: moto 5.2
    # ignores MessageType and hashes what it is sent, so a digest would be hashed twice.
    kms_message_type: str
    # Deflate level of the zips: 1 is ~3x faster than 6 for a few % larger files.
    compression_level: int
    # Google's padding: a file under 1000 + 0-100 keys is filled with deterministic fake
    # keys, so its size does not tell how many people reported (DESIGN §8). On unless a
    # stage turns it off (the local stack, whose tests read back exactly what they upload).
    pad_files: bool
    lease_seconds: int
    file_retention_days: int
    list_default_limit: int
    list_max_limit: int
    # Length of the delta windows: an upload is listed within one window plus one 5-minute
    # run, and its upload time is known to an observer only to within one window. One hour
    # by default: Google's reference server truncates upload times to the hour for that
    # privacy reason, and phones check every few hours, so a shorter window would only
    # reveal more. Each delta holds the day so far and supersedes the last, so the discovery
    # bounds (15 files for a new phone, 2 per 3-hourly check) hold for any length. The local
    # stack uses 1 minute, so a developer's upload is listed within minutes.
    window_minutes: int = 60

    @classmethod
    def read(cls, env: _Env) -> EnfExportSettings:
        settings = cls(
            verification_key_id=env.text("ENF_EXPORT_KEY_ID", "530"),
            verification_key_version=env.text("ENF_EXPORT_KEY_VERSION", "v1"),
            region=env.text("ENF_EXPORT_REGION", "NZ"),
            kms_message_type=env.text("ENF_EXPORT_KMS_MESSAGE_TYPE", "DIGEST"),
            compression_level=env.integer("ENF_EXPORT_COMPRESSION_LEVEL", 1, 0, 9),
            pad_files=env.flag("ENF_EXPORT_PAD_FILES", True),
            # Longer than a run takes, shorter than the 5-minute schedule.
            lease_seconds=env.integer("ENF_EXPORT_LEASE_SECONDS", 240, 10, 900),
            file_retention_days=env.integer("ENF_EXPORT_FILE_RETENTION_DAYS", 14, 1, 60),
            list_default_limit=env.integer("ENF_EXPORT_LIST_DEFAULT_LIMIT", 100, 1, 1000),
            list_max_limit=env.integer("ENF_EXPORT_LIST_MAX_LIMIT", 1000, 1, 10_000),
            window_minutes=env.integer("ENF_EXPORT_WINDOW_MINUTES", 60, 1, 1440),
        )
        if settings.window_minutes > 0 and MINUTES_PER_DAY % settings.window_minutes:
            # Windows are cut from midnight UTC: they must tile the day exactly.
            env.problems.append(
                f"ENF_EXPORT_WINDOW_MINUTES must divide a day ({MINUTES_PER_DAY} minutes), "
                f"got {settings.window_minutes}"
            )
        if settings.file_retention_days < MIN_KEY_RETENTION_DAYS:
            env.problems.append(
                f"ENF_EXPORT_FILE_RETENTION_DAYS must be at least {MIN_KEY_RETENTION_DAYS}"
            )
        if settings.kms_message_type not in ("DIGEST", "RAW"):
            env.problems.append("ENF_EXPORT_KMS_MESSAGE_TYPE must be DIGEST or RAW")
        if settings.list_default_limit > settings.list_max_limit:
            env.problems.append(
                "ENF_EXPORT_LIST_DEFAULT_LIMIT must not exceed ENF_EXPORT_LIST_MAX_LIMIT"
            )
        return settings


@dataclass(frozen=True)
class EnfClientConfigSettings:
    """Where an operator keeps the stage's exposure configuration and notification settings
    (Parameter Store, one JSON document each), and how long a Lambda keeps what it read.
    A parameter that does not exist means the stage default (``covidtracer.enf.
    client_config_store``); ``-`` means none is read at all."""

    exposure_parameter: str | None
    notification_parameter: str | None
    # A minute: an operator's change reaches every phone's next check, at one Parameter Store
    # read per document per minute per warm Lambda.
    cache_seconds: int = 60

    @classmethod
    def read(cls, env: _Env, stage: str) -> EnfClientConfigSettings:
        prefix = f"/covidtracer/{stage}/enf"
        names = {
            "exposure": env.text("ENF_EXPOSURE_CONFIG_PARAMETER", f"{prefix}/exposure-config"),
            "notification": env.text(
                "ENF_NOTIFICATION_CONFIG_PARAMETER", f"{prefix}/notification-config"
            ),
        }
        for kind, name in names.items():
            if name != "-" and not name.startswith("/"):
                env.problems.append(
                    f"ENF_{kind.upper()}_CONFIG_PARAMETER must be a parameter path (/…) or -"
                )
        return cls(
            exposure_parameter=None if names["exposure"] == "-" else names["exposure"],
            notification_parameter=None if names["notification"] == "-" else names["notification"],
            cache_seconds=env.integer("ENF_CLIENT_CONFIG_CACHE_SECONDS", 60, 0, 3600),
        )


@dataclass(frozen=True)
class EnfSettings:
    """The Exposure Notification key server (``services/enf``)."""

    stage: str
    aws: AwsSettings
    database: DatabaseSettings
    exports_bucket: str
    export_signing_key_id: str
    ncts_api_key_secret_id: str
    partners: PartnerSettings
    log_level: str
    tokens: EnfTokenSettings
    keys: EnfKeySettings
    attestation: AttestationSettings
    sms: SmsSettings
    export: EnfExportSettings
    # Per-registration minimum seconds between two metrics of one event; unlisted events
    # are refused. JSON object, e.g. {"CONTACT_UPLOAD": 86400}.
    metrics_intervals: Mapping[str, int]
    callback_interval_seconds: int
    # The stage's default documents served to phones (None: the ones shipped in the package);
    # an operator's document in Parameter Store (``client_config``) takes their place.
    exposure_config_json: str | None
    notification_config_json: str | None

    client_config: EnfClientConfigSettings

    @property
    def attestation_platforms(self) -> tuple[str, ...]:
        return self.attestation.platforms

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EnfSettings:
        env = _Env(os.environ if environ is None else environ)
        stage = env.stage()
        settings = cls(
            stage=stage,
            aws=AwsSettings.read(env, stage),
            database=DatabaseSettings.read(env),
            exports_bucket=env.text("ENF_EXPORTS_BUCKET"),
            export_signing_key_id=env.text("EXPORT_SIGNING_KEY_ID"),
            ncts_api_key_secret_id=env.text("NCTS_API_KEY_SECRET_ID"),
            partners=PartnerSettings.read(env),
            log_level=env.log_level(),
            tokens=EnfTokenSettings.read(env),
            keys=EnfKeySettings.read(env),
            attestation=AttestationSettings.read(env, stage),
            sms=SmsSettings.read(env),
            export=EnfExportSettings.read(env),
            metrics_intervals=_intervals(env, "ENF_METRICS_INTERVALS", DEFAULT_METRICS_INTERVALS),
            callback_interval_seconds=env.integer("ENF_CALLBACK_INTERVAL_SECONDS", 3600, 0),
            exposure_config_json=_json_document(env, "ENF_EXPOSURE_CONFIG"),
            notification_config_json=_json_document(env, "ENF_NOTIFICATION_CONFIG"),
            client_config=EnfClientConfigSettings.read(env, stage),
        )
        _raise_if_problems("enf", env)
        return settings


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


def _intervals(env: _Env, name: str, default: Mapping[str, int]) -> Mapping[str, int]:
    raw = env.optional(name)
    if raw is None:
        return dict(default)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in value.items()
    ):
        env.problems.append(f"{name} must be a JSON object of event names to whole seconds")
        return dict(default)
    return dict(value)


def _json_document(env: _Env, name: str) -> str | None:
    raw = env.optional(name)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        env.problems.append(f"{name} must be a JSON object")
        return None
    return raw


def _raise_if_problems(service: str, env: _Env) -> None:
    if env.problems:
        raise SettingsError(service, env.problems)


def _cached[T](loader: Callable[[], T]) -> Callable[[], T]:
    cached = cache(loader)
    _CACHES.append(cached.cache_clear)
    return cached


def built_from_settings[T](loader: Callable[[], T]) -> Callable[[], T]:
    """Caches what ``loader`` builds from settings (adapters, verifiers) for the execution
    environment; ``reset()`` forgets it with the settings it was built from."""
    return _cached(loader)


_CACHES: list[Callable[[], None]] = []


def _aws_from_env() -> AwsSettings:
    env = _Env(os.environ)
    settings = AwsSettings.read(env, env.stage())
    _raise_if_problems("aws", env)
    return settings


aws_settings = _cached(_aws_from_env)
auth_settings = _cached(AuthSettings.from_env)
details_settings = _cached(DetailsSettings.from_env)
export_settings = _cached(ExportSettings.from_env)
enf_settings = _cached(EnfSettings.from_env)
analytics_settings = _cached(AnalyticsSettings.from_env)
usage_report_settings = _cached(UsageReportSettings.from_env)


def reset() -> None:
    """Forget settings read so far (tests change the environment between cases)."""
    for clear in _CACHES:
        clear()
