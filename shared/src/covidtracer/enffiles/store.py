"""The export files' store in AWS: objects of the exports bucket (S3)."""

from __future__ import annotations

from typing import Any

from covidtracer import aws
from covidtracer.errors import NotFound, Unavailable


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
