"""The daily usage report's knobs: where the events are, where the report goes, its day."""

from __future__ import annotations

from dataclasses import dataclass

from covidtracer import config
from covidtracer.config import Env, setting
from covidtracer.settings import AwsSettings


@dataclass(frozen=True, kw_only=True)
class UsageReportSettings(config.ServiceSettings):
    """The daily usage report (``usage-report`` job): where events are and the report goes."""

    SERVICE = "usage-report"

    stage: str
    aws: AwsSettings
    bucket: str = setting("ANALYTICS_BUCKET")
    events_prefix: str = setting("ANALYTICS_EVENTS_PREFIX", "events/")
    reports_prefix: str = setting("USAGE_REPORT_PREFIX", "reports/usage/")
    # The Ministry measured each day from 1 pm to 1 pm New Zealand time.
    timezone: str = setting("USAGE_REPORT_TIMEZONE", "Pacific/Auckland")
    day_ends_at_hour: int = setting("USAGE_REPORT_DAY_ENDS_AT_HOUR", 13, minimum=0, maximum=23)
    # Report the window still open (the local stack, so a by-hand day shows at once);
    # otherwise the job reports the last closed window.
    include_open_window: bool = setting("USAGE_REPORT_INCLUDE_OPEN_WINDOW", False)
    log_level: str = setting("LOG_LEVEL", "INFO")

    def check(self, env: Env) -> None:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(self.timezone)
        except (ValueError, LookupError):
            env.problems.append(f"USAGE_REPORT_TIMEZONE {self.timezone!r} is not a known zone")


usage_report_settings = config.cached(UsageReportSettings.from_env)
