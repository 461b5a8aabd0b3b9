"""``/v1/publish``'s production adapters: the apps document and this deployment's certificate
key (``verification.wiring``), and the revision tokens' data keys (PostgreSQL + KMS)."""

from __future__ import annotations

from covidtracer import config
from covidtracer.enfkeys.settings import EnfSettings, enf_settings
from covidtracer.publish.keyring import RevisionKeyring
from covidtracer.publish.service import Deps
from covidtracer.verification import wiring as verification_wiring


def deps_for(settings: EnfSettings) -> Deps:
    p = settings.publish
    return Deps(
        settings=settings,
        apps=verification_wiring.apps(),
        own_public_key=verification_wiring.own_public_key,
        keyring=RevisionKeyring(settings.database, p.revision_key_id, p.revision_key_cache_seconds),
    )


@config.cached
def deps() -> Deps:
    """The stage's adapters (``config.reset`` forgets them with the settings)."""
    return deps_for(enf_settings())
