"""Lazy, cached boto3 clients whose endpoint and regions come from settings.

boto3 costs ~200 ms to import, so it is imported on first use, never at module import: a
Lambda that serves a request without AWS calls never pays for it (with SnapStart the apps
create their clients at init instead: ``covidtracer.snapstart``). One client per
(service, region) is kept for the life of the execution environment, all from one boto3
session, whose loader keeps each service's parsed model: a client made again (after
``forget_credentials``) costs a few milliseconds, not the model's parsing. SES has a region
of its own (Cognito cannot use SES in Sydney).
"""

from __future__ import annotations

import threading
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
# quick 503 than by a request that hangs on a sick dependency. The numbers are settings
# (``AwsSettings``: connect 1 s, read 2 s, 2 attempts; Cognito read 10 s, 1 attempt).
COGNITO = "cognito-idp"


def budget(service: str, aws: settings.AwsSettings) -> tuple[float, float, int]:
    """(connect timeout s, read timeout s, attempts) for calls to ``service``."""
    if service == COGNITO:
        return aws.connect_timeout_ms / 1000, aws.cognito_read_timeout_ms / 1000, 1
    return aws.connect_timeout_ms / 1000, aws.read_timeout_ms / 1000, aws.max_attempts


# A boto3 session is not thread-safe (its clients are): clients are made one at a time.
_making = threading.Lock()


@cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


@cache
def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` in ``region`` (default: the main region)."""
    aws = settings.aws_settings()
    with _making:
        return _session().client(
            service,
            region_name=region or aws.region,
            endpoint_url=aws.endpoint_url,
            config=client_config(service),
        )


def client_config(service: str) -> Any:
    """The botocore ``Config`` of ``service``'s clients: its time budget (``budget``)."""
    from botocore.config import Config

    connect, read, attempts = budget(service, settings.aws_settings())
    return Config(
        connect_timeout=connect,
        read_timeout=read,
        # total_max_attempts counts the first call too (botocore's max_attempts does not,
        # in the config file's sense); standard mode retries throttling, 5xx and connection
        # errors, read timeouts included, with jittered backoff.
        retries={"mode": "standard", "total_max_attempts": attempts},
    )


def forget_credentials() -> None:
    """Drop the clients (their credentials and open connections) but keep the session's
    parsed service models: the next ``client()`` resolves credentials afresh. SnapStart
    calls this before the snapshot, so no restored environment reuses the credentials or
    sockets of the one that was snapshotted."""
    client.cache_clear()
    if _session.cache_info().currsize:
        # botocore keeps the resolved credentials on the session; None makes it resolve them
        # again on the next client (botocore.session.Session.get_credentials).
        _session()._session._credentials = None


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
    return client(COGNITO)  # type: ignore[no-any-return]


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
    _session.cache_clear()
    secret_string.cache_clear()
