"""The usage report's production dependencies: the analytics bucket named by its settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidtracer import config

if TYPE_CHECKING:
    from covidtracer.usagereport.service import ReportDeps


@config.cached
def report_deps() -> ReportDeps:
    from covidtracer.usagereport.repository import S3Analytics
    from covidtracer.usagereport.service import ReportDeps
    from covidtracer.usagereport.settings import usage_report_settings

    settings = usage_report_settings()
    bucket = S3Analytics(settings.bucket)
    return ReportDeps(archive=bucket, reports=bucket, config=settings)
