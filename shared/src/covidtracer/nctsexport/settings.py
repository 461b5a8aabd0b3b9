"""The export app's settings: the updates queue, the ``UserDetails`` bucket and its key."""

from __future__ import annotations

from dataclasses import dataclass

from covidtracer import config
from covidtracer.config import Env, setting
from covidtracer.settings import AwsServiceSettings, Tables


@dataclass(frozen=True, kw_only=True)
class ExportSettings(AwsServiceSettings):
    """The NCTS personal-details export (``services/export``)."""

    SERVICE = "export"

    tables: Tables
    personal_data_updates_queue_url: str = setting("PERSONAL_DATA_UPDATES_QUEUE_URL", url=True)
    user_details_bucket: str = setting("USER_DETAILS_BUCKET")
    user_details_kms_key_id: str = setting("USER_DETAILS_KMS_KEY_ID")
    # Chalice reads the ARN from the environment when ``app.py`` is imported (the event source
    # mapping is made at deploy time); validated here so a stage without it fails loudly at
    # cold start too.
    personal_details_stream_arn: str = setting("PERSONAL_DETAILS_STREAM_ARN")

    def check(self, env: Env) -> None:
        arn = self.personal_details_stream_arn
        if arn and not (arn.startswith("arn:") and "/stream/" in arn):
            env.problems.append(
                f"PERSONAL_DETAILS_STREAM_ARN must be a DynamoDB stream ARN, got {arn!r}"
            )


export_settings = config.cached(ExportSettings.from_env)
