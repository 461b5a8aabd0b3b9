"""The apps document from Secrets Manager (``model.AppsDocument``), re-read every
``apps_cache_seconds`` so a new API key or health authority reaches every Lambda without a
deployment. A read that fails is ``Unavailable`` (503) unless an earlier document is held."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from covidtracer import aws
from covidtracer.errors import Unavailable
from covidtracer.logs import get_logger
from covidtracer.verification.model import AppsDocument, parse_apps_document

log = get_logger(__name__)


class AppsSecret:
    def __init__(
        self,
        secret_id: str,
        cache_seconds: int,
        clock: Callable[[], float] = time.monotonic,
        read: Callable[[str], str] | None = None,
    ) -> None:
        self._secret_id = secret_id
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._read = read or _read_secret
        self._lock = threading.Lock()
        self._held: tuple[float, AppsDocument] | None = None

    def __call__(self) -> AppsDocument:
        with self._lock:
            held = self._held
            if held is not None and self._clock() - held[0] < self._cache_seconds:
                return held[1]
            try:
                document = parse_apps_document(self._read(self._secret_id))
            except (Unavailable, ValueError) as exc:
                # What is wrong, never the document (it holds API keys).
                log.error("apps document unreadable", extra={"error": type(exc).__name__})
                if held is not None:
                    return held[1]
                raise Unavailable("apps document") from exc
            self._held = (self._clock(), document)
            return document


def _read_secret(secret_id: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = aws.secrets().get_secret_value(SecretId=secret_id).get("SecretString")
    except (BotoCoreError, ClientError) as exc:
        raise Unavailable(f"secretsmanager ({type(exc).__name__})") from exc
    return value or ""
