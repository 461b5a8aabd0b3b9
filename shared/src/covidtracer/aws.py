"""Lazy, cached boto3 clients whose endpoint and regions come from settings.

boto3 costs ~200 ms to import, so it is imported on first use, never at module import: a
Lambda that serves a request without AWS calls never pays for it. One client per
(service, region) is kept for the life of the execution environment. SES has a region of
its own (Cognito cannot use SES in Sydney).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from covidtracer import settings

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sqs import SQSClient

# Fail fast: a Lambda behind API Gateway has 29 s, and a caller is better served by a
# quick 503 than by a request that hangs on a sick dependency.
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = 3


@cache
def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` in ``region`` (default: the main region)."""
    import boto3
    from botocore.config import Config

    aws = settings.aws_settings()
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=region or aws.region,
        endpoint_url=aws.endpoint_url,
        config=Config(
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        ),
    )


def dynamodb() -> DynamoDBClient:
    return client("dynamodb")  # type: ignore[no-any-return]


def s3() -> S3Client:
    return client("s3")  # type: ignore[no-any-return]


def sqs() -> SQSClient:
    return client("sqs")  # type: ignore[no-any-return]


def kms() -> KMSClient:
    return client("kms")  # type: ignore[no-any-return]


def secrets() -> SecretsManagerClient:
    return client("secretsmanager")  # type: ignore[no-any-return]


def cognito() -> CognitoIdentityProviderClient:
    return client("cognito-idp")  # type: ignore[no-any-return]


def ses() -> SESClient:
    return client("ses", settings.aws_settings().ses_region)  # type: ignore[no-any-return]


@cache
def secret_string(secret_id: str) -> str:
    """A secret's current value, read once per execution environment.

    Raises ``Unavailable`` when Secrets Manager cannot be reached or refuses (a missing
    secret is a broken deployment, never the caller's input), ``ValueError`` when the
    secret holds no string.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from covidtracer.errors import Unavailable

    try:
        value = secrets().get_secret_value(SecretId=secret_id).get("SecretString")
    except (BotoCoreError, ClientError) as error:
        raise Unavailable(f"secretsmanager ({type(error).__name__})") from error
    if not value:
        raise ValueError(f"secret {secret_id} has no string value")
    return value


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``"NoSuchKey"`` …), else ``""``."""
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def reset() -> None:
    """Drop cached clients and secrets (tests point them at a fresh endpoint)."""
    client.cache_clear()
    secret_string.cache_clear()
