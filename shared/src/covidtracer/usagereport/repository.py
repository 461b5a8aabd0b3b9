"""The analytics bucket as the usage report reads and writes it: Firehose's objects under the
events prefix, the reports beside them. ``MemoryAnalytics`` is its in-memory twin; botocore
errors become ``Unavailable``."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from typing import Protocol

from covidtracer import aws
from covidtracer.errors import Unavailable

GZIP_MAGIC = b"\x1f\x8b"


class EventArchive(Protocol):
    def objects(self, prefixes: Sequence[str]) -> Iterator[bytes]:
        """The content of every object under any of ``prefixes`` (decompressed)."""
        ...


class ReportStore(Protocol):
    def read(self, key: str) -> bytes | None: ...

    def write(self, key: str, body: bytes, content_type: str) -> None: ...


def _maybe_gunzip(body: bytes) -> bytes:
    # The app's stream writes GZIP objects (the template asks for it) without a
    # Content-Encoding; the services' stream stores what CloudWatch Logs delivers, each record
    # gzip'd on its own, so its objects are gzip members one after another (which
    # ``gzip.decompress`` reads whole); moto stores records as they were put. All are read
    # the same way.
    return gzip.decompress(body) if body[:2] == GZIP_MAGIC else body


class S3Analytics:
    """The analytics bucket: Firehose's objects under the events prefix, the reports beside."""

    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def objects(self, prefixes: Sequence[str]) -> Iterator[bytes]:
        s3 = aws.s3()
        try:
            for prefix in prefixes:
                pages = s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self._bucket, Prefix=prefix
                )
                for page in pages:
                    for item in page.get("Contents", []):
                        body = s3.get_object(Bucket=self._bucket, Key=item["Key"])["Body"]
                        yield _maybe_gunzip(body.read())
        except Exception as exc:
            if _is_client_error(exc) or _is_connection_error(exc):
                raise Unavailable(f"s3:analytics ({type(exc).__name__})") from exc
            raise

    def read(self, key: str) -> bytes | None:
        try:
            body: bytes = aws.s3().get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except Exception as exc:
            if aws.error_code(exc) in ("NoSuchKey", "404"):
                return None
            if _is_client_error(exc) or _is_connection_error(exc):
                raise Unavailable(f"s3:analytics ({type(exc).__name__})") from exc
            raise
        return body

    def write(self, key: str, body: bytes, content_type: str) -> None:
        try:
            aws.s3().put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                CacheControl="no-cache",
            )
        except Exception as exc:
            if _is_client_error(exc) or _is_connection_error(exc):
                raise Unavailable(f"s3:analytics ({type(exc).__name__})") from exc
            raise


def _is_client_error(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError)


def _is_connection_error(exc: Exception) -> bool:
    from botocore.exceptions import BotoCoreError

    return isinstance(exc, BotoCoreError)


class MemoryAnalytics:
    """The in-memory twin of the bucket."""

    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}

    def objects(self, prefixes: Sequence[str]) -> Iterator[bytes]:
        for key in sorted(self.store):
            if any(key.startswith(p) for p in prefixes):
                yield _maybe_gunzip(self.store[key])

    def read(self, key: str) -> bytes | None:
        return self.store.get(key)

    def write(self, key: str, body: bytes, content_type: str) -> None:
        self.store[key] = body
