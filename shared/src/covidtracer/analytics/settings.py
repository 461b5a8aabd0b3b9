"""The emitter's knobs, read by every service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from covidtracer import config
from covidtracer.config import Env, setting


@dataclass(frozen=True, kw_only=True)
class AnalyticsSettings:
    """The services' own events (``covidtracer.analytics``), read by every service.

    The events are lines of the function's log; where they go from there is the deployment's
    business (a subscription filter on each log group), so a service needs no stream name and
    no permission for them. Analytics never stop a service from starting: a problem here is
    not fatal either.
    """

    stage: str
    # "false" writes no events at all (the upload bench measures the same run with and
    # without them); every stage runs with them on.
    enabled: bool = setting("ANALYTICS_EVENTS", True)
    # The release (from git) the deployment tags every function with (DESIGN §6).
    release_version: str = setting("RELEASE_VERSION", "unreleased")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AnalyticsSettings:
        # Never fatal: what could be read is used, the rest keeps its default.
        return config.read(cls, Env(environ))


analytics_settings = config.cached(AnalyticsSettings.from_env)
