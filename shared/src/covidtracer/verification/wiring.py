"""The verification contract's production adapters, built once per execution environment:
the HS256 and code-hash secrets (shared with COVID Green's routes), the apps document from
Secrets Manager and the certificate key in KMS."""

from __future__ import annotations

from covidtracer import aws, config
from covidtracer.enffiles.kms import KmsSigner
from covidtracer.enfkeys.settings import EnfSettings, enf_settings
from covidtracer.verification.apps import AppsSecret
from covidtracer.verification.kms import CertificateSigner
from covidtracer.verification.service import Deps


@config.cached
def apps() -> AppsSecret:
    """The stage's apps document, one cache for both of Google's services."""
    v = enf_settings().verification
    return AppsSecret(v.apps_secret_id, v.apps_cache_seconds)


@config.cached
def certificate_signer() -> CertificateSigner:
    v = enf_settings().verification
    return CertificateSigner(KmsSigner(v.certificate_key_id, v.kms_message_type))


@config.cached
def own_public_key() -> str:
    """The certificate key's public half, read from KMS once (a failure is not kept: the
    next call asks again)."""
    return certificate_signer().public_key_pem()


def deps_for(settings: EnfSettings) -> Deps:
    tokens = settings.tokens
    return Deps(
        settings=settings,
        signing_key=lambda: aws.secret_string(tokens.signing_secret_id),
        code_hash_key=lambda: aws.secret_string(tokens.code_hash_secret_id).encode(),
        apps=apps(),
        sign_certificate=certificate_signer().sign_raw,
    )


@config.cached
def deps() -> Deps:
    """The stage's adapters (``config.reset`` forgets them with the settings)."""
    return deps_for(enf_settings())
