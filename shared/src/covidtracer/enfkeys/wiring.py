"""The ENF API's production adapters, built from settings once per execution environment:
secrets from Secrets Manager, the attestation verifiers, SMS and NCTS over HTTP, the
operator's documents from Parameter Store, and the export files (``enffiles.wiring``)."""

from __future__ import annotations

from covidtracer import aws, config, health
from covidtracer.enffiles import wiring as files_wiring
from covidtracer.enfkeys import client_config_store
from covidtracer.enfkeys.attestation import verifier_for
from covidtracer.enfkeys.ncts import HttpNcts
from covidtracer.enfkeys.service import Deps
from covidtracer.enfkeys.settings import EnfSettings, enf_settings
from covidtracer.enfkeys.sms import sender_for


def deps_for(settings: EnfSettings) -> Deps:
    """The use cases' adapters for ``settings``. Raises ``SettingsError`` when a stage's
    default document is one phones would refuse."""
    timeout = settings.partners.ncts_timeout_seconds
    tokens = settings.tokens
    return Deps(
        settings=settings,
        signing_key=lambda: aws.secret_string(tokens.signing_secret_id),
        code_hash_key=lambda: aws.secret_string(tokens.code_hash_secret_id).encode(),
        ncts_api_key=lambda: aws.secret_string(settings.ncts_api_key_secret_id),
        verifier=lambda platform: verifier_for(platform, settings.attestation, timeout),
        sms=sender_for(settings.sms),
        ncts=HttpNcts(settings.partners),
        documents=client_config_store.for_settings(settings),
        files=files_wiring.deps_for(settings),
    )


@config.cached
def deps() -> Deps:
    """The stage's adapters (``config.reset`` forgets them with the settings)."""
    return deps_for(enf_settings())


def health_checks(settings: EnfSettings) -> dict[str, health.Check]:
    """What ``GET /health`` checks: the database and the exports bucket (read from settings
    alone, so a stage whose documents are refused still reports its dependencies)."""
    return {
        **health.database_check(settings.database),
        **health.bucket_check("enf_exports", settings.exports_bucket),
    }
