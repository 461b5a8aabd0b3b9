"""Export I/O adapters: the KMS signer, the S3 file store and the completion metric."""

from __future__ import annotations

import hashlib
from typing import Any

from covidtracer import aws
from covidtracer.errors import NotFound, Unavailable
from covidtracer.logs import get_logger

log = get_logger(__name__)

METRIC_NAMESPACE = "CovidTracer"
METRIC_EXPORT_COMPLETED = "EnfExportCompleted"


class KmsSigner:
    """A ``signing.Signer`` through KMS on an ECC_NIST_P256 ``SIGN_VERIFY`` key.

    Sends SHA-256(export.bin) with ``MessageType=DIGEST``: ``RAW`` is capped at 4096 bytes.
    KMS returns the DER signature phones expect. ``message_type="RAW"`` sends the file
    itself, for KMS emulators without DIGEST support (moto). Raises ``Unavailable`` if KMS
    fails.
    """

    def __init__(
        self, key_id: str, message_type: str = "DIGEST", client: Any | None = None
    ) -> None:
        self._key_id = key_id
        self._message_type = message_type
        self._client = client

    def _kms(self) -> Any:
        return self._client if self._client is not None else aws.kms()

    def sign(self, message: bytes | bytearray) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._kms().sign(
                KeyId=self._key_id,
                Message=(
                    hashlib.sha256(message).digest() if self._message_type == "DIGEST" else message
                ),
                MessageType=self._message_type,
                SigningAlgorithm="ECDSA_SHA_256",
            )
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable("kms") from exc
        return bytes(response["Signature"])

    def public_key_pem(self) -> str:
        from botocore.exceptions import BotoCoreError, ClientError
        from cryptography.hazmat.primitives import serialization

        try:
            der = self._kms().get_public_key(KeyId=self._key_id)["PublicKey"]
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable("kms") from exc
        key = serialization.load_der_public_key(bytes(der))
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")


class S3FileStore:
    """Export objects in the exports bucket. Raises ``Unavailable`` if S3 fails."""

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self._bucket = bucket
        self._client = client

    def _s3(self) -> Any:
        return self._client if self._client is not None else aws.s3()

    def put(self, path: str, body: bytes, content_type: str, cache_control: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3().put_object(
                Bucket=self._bucket,
                Key=path,
                Body=body,
                ContentType=content_type,
                CacheControl=cache_control,
            )
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable("s3") from exc

    def get(self, path: str) -> bytes:
        """The object's bytes; ``NotFound`` if there is none."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return bytes(self._s3().get_object(Bucket=self._bucket, Key=path)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound() from exc
            raise Unavailable("s3") from exc
        except BotoCoreError as exc:
            raise Unavailable("s3") from exc

    def delete(self, paths: list[str]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for start in range(0, len(paths), 1000):  # DeleteObjects takes 1000 keys a call
                chunk = paths[start : start + 1000]
                self._s3().delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": p} for p in chunk], "Quiet": True},
                )
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable("s3") from exc


def put_completed_metric(stage: str, files: int, keys: int) -> None:
    """``CovidTracer/EnfExportCompleted`` (dimension Stage), which the export-lag alarm watches.

    A failure is logged, never raised: the files are written, and a missing datapoint is
    exactly what the alarm reports.
    """
    try:
        aws.client("cloudwatch").put_metric_data(
            Namespace=METRIC_NAMESPACE,
            MetricData=[
                {
                    "MetricName": METRIC_EXPORT_COMPLETED,
                    "Dimensions": [{"Name": "Stage", "Value": stage}],
                    "Value": 1,
                    "Unit": "Count",
                }
            ],
        )
    except Exception as exc:  # metrics must never fail the export
        log.warning("export metric not sent", extra={"error_type": type(exc).__name__})
    log.info(METRIC_EXPORT_COMPLETED, extra={"stage": stage, "files": files, "keys": keys})
