"""The production dependencies of the export, built from ``ExportSettings`` once per execution
environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidtracer import config

if TYPE_CHECKING:
    from covidtracer.nctsexport.service import ExportDeps


@config.cached
def export_deps() -> ExportDeps:
    """The updates queue, the ``PersonalDetails`` table, the ``UserDetails`` bucket and the
    export state beside its files."""
    from covidtracer import aws
    from covidtracer.nctsexport.repository import (
        DetailsTable,
        ExportBucket,
        ExportStateObject,
        UpdatesQueue,
    )
    from covidtracer.nctsexport.service import ExportDeps
    from covidtracer.nctsexport.settings import export_settings

    export = export_settings()
    s3 = aws.s3()
    return ExportDeps(
        queue=UpdatesQueue(aws.sqs(), export.personal_data_updates_queue_url),
        table=DetailsTable(aws.dynamodb(), export.tables.personal_details),
        bucket=ExportBucket(s3, export.user_details_bucket, export.user_details_kms_key_id),
        state=ExportStateObject(s3, export.user_details_bucket),
    )
