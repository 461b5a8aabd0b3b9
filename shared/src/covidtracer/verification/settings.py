"""The verification contract's knobs (``ENF_VERIFICATION_*``, ``ENF_CERTIFICATE_*``), each
declared once. Numbers are Google's defaults, cited where they are defined."""

from __future__ import annotations

from dataclasses import dataclass

from covidtracer.config import Env, setting


@dataclass(frozen=True, kw_only=True)
class VerificationSettings:
    """Tokens from ``/api/verify`` and certificates from ``/api/certificate``."""

    # The ECC_NIST_P256 SIGN_VERIFY KMS key that signs certificates (like the export key).
    certificate_key_id: str = setting("ENF_CERTIFICATE_SIGNING_KEY_ID")
    # The JWT header's kid, and the iss/aud claims: this deployment's health authority as a
    # key server knows it (`publish` registers it by default).
    certificate_kid: str = setting("ENF_CERTIFICATE_KID", "v1")
    certificate_issuer: str = setting("ENF_CERTIFICATE_ISSUER", "nz.govt.health.covidtracer")
    certificate_audience: str = setting(
        "ENF_CERTIFICATE_AUDIENCE", "nz.govt.health.covidtracer.keyserver"
    )
    # exposure-notifications-verification-server pkg/database/realm.go: CertificateDuration
    # default 15m; pkg/config/certificate_signing_config.go: ALLOWED_CLOCK_SKEW default 5s
    # (iat and nbf are back-dated by it).
    certificate_minutes: int = setting("ENF_CERTIFICATE_MINUTES", 15, minimum=1, maximum=60)
    clock_skew_seconds: int = setting(
        "ENF_CERTIFICATE_CLOCK_SKEW_SECONDS", 5, minimum=0, maximum=60
    )
    # pkg/config/api_server_config.go: VERIFICATION_TOKEN_DURATION default 24h.
    token_hours: int = setting("ENF_VERIFICATION_TOKEN_HOURS", 24, minimum=1, maximum=72)
    # The Secrets Manager secret holding the apps' API keys and other health authorities
    # (``model.AppsDocument``): keys are secrets, never environment variables.
    apps_secret_id: str = setting("ENF_APPS_SECRET_ID")
    # A Lambda keeps what it read this long; a new API key reaches every Lambda within it.
    apps_cache_seconds: int = setting("ENF_APPS_CACHE_SECONDS", 300, minimum=0, maximum=3600)
    # KMS Sign: DIGEST in AWS; RAW for moto, which hashes what it is sent (as the export's).
    kms_message_type: str = setting(
        "ENF_CERTIFICATE_KMS_MESSAGE_TYPE", "DIGEST", choices=("DIGEST", "RAW")
    )

    def check(self, env: Env) -> None:
        if self.certificate_issuer == self.certificate_audience:
            env.problems.append("ENF_CERTIFICATE_ISSUER and ENF_CERTIFICATE_AUDIENCE must differ")
