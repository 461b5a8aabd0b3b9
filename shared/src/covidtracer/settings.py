"""The core's own settings — where AWS is, the DynamoDB tables, PostgreSQL, the partners,
FCM — and ``AwsServiceSettings``, what every service's settings start from. Each is declared
once with ``config.setting``; the domains declare theirs in their own ``settings.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from covidtracer import config
from covidtracer.config import Env, setting


def _region(env: Env, name: str, default: str) -> str:
    return env.text(name, env.raw("AWS_DEFAULT_REGION") or default)


@dataclass(frozen=True, kw_only=True)
class AwsSettings:
    """Where the AWS APIs are. ``endpoint_url`` is set only for the local stack (moto)."""

    region: str = setting("AWS_REGION", "ap-southeast-2", parse=_region)
    # Cognito cannot send through SES in Sydney, so SES lives in another region.
    ses_region: str = setting("SES_REGION", "us-west-2")
    endpoint_url: str | None = setting("AWS_ENDPOINT_URL", None, url=True)
    # Every AWS call's budget (boto3 and pynamodb alike; docs/operations.md, "Time budget"):
    # an endpoint that stops answering costs at most attempts x (connect or read timeout)
    # plus botocore's backoff (under 1 s before a second attempt), a 503 well inside API
    # Gateway's 29 s. DynamoDB, S3, KMS, SQS, SES and Secrets Manager answer in tens of ms.
    connect_timeout_ms: int = setting("AWS_CONNECT_TIMEOUT_MS", 1_000, minimum=100, maximum=10_000)
    read_timeout_ms: int = setting("AWS_READ_TIMEOUT_MS", 2_000, minimum=100, maximum=60_000)
    max_attempts: int = setting("AWS_MAX_ATTEMPTS", 2, minimum=1, maximum=5)
    # Cognito runs the custom-auth triggers inside AdminInitiateAuth and
    # AdminRespondToAuthChallenge (each trigger may take up to 5 s), so it gets longer, and one
    # attempt: a repeated call would run the triggers again (another code emailed).
    cognito_read_timeout_ms: int = setting(
        "COGNITO_READ_TIMEOUT_MS", 10_000, minimum=100, maximum=20_000
    )

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
    # The client's deadlines (docs/operations.md, "Time budget"): a connection is made within
    # this many seconds (libpq counts at least 2) and each wait on the server (a statement,
    # COPY, commit) ends within the query timeout, so a database that stops answering is a
    # 503 well inside API Gateway's 29 s. The server-side statement_timeout is the
    # database's own setting (migration 0005): RDS Proxy refuses it as a startup option.
    connect_timeout_seconds: int = setting("DATABASE_CONNECT_TIMEOUT", 3, minimum=1, maximum=60)
    query_timeout_ms: int = setting("DATABASE_QUERY_TIMEOUT_MS", 8_000, minimum=100, maximum=60_000)

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


reset = config.reset


def _aws_from_env() -> AwsSettings:
    return config.load(AwsSettings, "aws")


aws_settings = config.cached(_aws_from_env)
