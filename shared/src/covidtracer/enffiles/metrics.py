"""The export run's completion metric in CloudWatch, which the export-lag alarm watches."""

from __future__ import annotations

from covidtracer import aws
from covidtracer.logs import METRIC_NAMESPACE, get_logger

log = get_logger(__name__)

METRIC_EXPORT_COMPLETED = "EnfExportCompleted"


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
