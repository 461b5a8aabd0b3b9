"""The emitter's knobs, read by every service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from covidtracer import config
from covidtracer.config import Env, setting


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


analytics_settings = config.cached(AnalyticsSettings.from_env)
