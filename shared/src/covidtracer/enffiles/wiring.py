"""The export's production adapters, built from settings once per execution environment:
KMS signs, S3 stores, CloudWatch hears that a run completed."""

from __future__ import annotations

from covidtracer import aws, config
from covidtracer.enffiles.kms import KmsSigner
from covidtracer.enffiles.metrics import put_completed_metric
from covidtracer.enffiles.service import Deps
from covidtracer.enffiles.store import S3FileStore
from covidtracer.enfkeys.settings import EnfSettings, enf_settings


def deps_for(settings: EnfSettings) -> Deps:
    """The export's adapters for ``settings`` (clients are created on first use)."""
    code_hash_secret_id = settings.tokens.code_hash_secret_id
    return Deps(
        database=settings.database,
        export=settings.export,
        stage=settings.stage,
        signer=KmsSigner(settings.export_signing_key_id, settings.export.kms_message_type),
        store=S3FileStore(settings.exports_bucket),
        # Fake keys are derived from the upload codes' server secret: a secret phones never
        # see, the same in every run (a re-run writes the same export.bin).
        padding_key=lambda: aws.secret_string(code_hash_secret_id).encode(),
        completed=put_completed_metric,
    )


@config.cached
def deps() -> Deps:
    """The stage's export adapters (``config.reset`` forgets them with the settings)."""
    return deps_for(enf_settings())
