"""The ENF API's knobs, each declared once with ``config.setting``, and ``EnfSettings``: the
whole ``services/enf`` configuration, read at once with every problem reported together."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from covidtracer import config
from covidtracer.config import Env, setting
from covidtracer.enffiles.settings import MIN_KEY_RETENTION_DAYS, EnfExportSettings
from covidtracer.publish.settings import PublishSettings
from covidtracer.settings import AwsServiceSettings, DatabaseSettings, PartnerSettings
from covidtracer.verification.settings import VerificationSettings

__all__ = ["MIN_KEY_RETENTION_DAYS", "EnfSettings", "enf_settings"]

ATTESTATION_VERIFIERS = ("ios", "android", "test")
# Google's public roots the Android verifier may trust, shipped in this package as
# attestation_roots/<name>.pem and chosen by name: a Lambda's whole environment holds 4 KB
# (https://docs.aws.amazon.com/lambda/latest/dg/limits.html), and an RSA-4096 root is 1.9 KB.
# gts-root-r1: Google Trust Services' GTS Root R1, the root of SafetyNet's attest.android.com
# chain (SHA-256 d947432a…57a7f4cf, https://pki.goog/repository/).
ANDROID_ROOTS = ("gts-root-r1",)
SMS_PROVIDERS = ("twilio", "aws")
# Google's key-server limit per upload: a phone hands over today's key plus 14 days, and a
# new key each time exposure notifications are switched off and on (CLIENTS.md).
MAX_KEYS_PER_UPLOAD_CEILING = 30


@dataclass(frozen=True, kw_only=True)
class EnfTokenSettings:
    """The ENF API's own JWTs, upload codes and registration nonces."""

    signing_secret_id: str = setting("ENF_TOKEN_SIGNING_SECRET_ID")
    code_hash_secret_id: str = setting("ENF_CODE_HASH_SECRET_ID")
    access_token_minutes: int = setting("ENF_ACCESS_TOKEN_MINUTES", 60, minimum=1, maximum=24 * 60)
    # A registration idle (never refreshed) this long is deleted by the cleanup job.
    refresh_token_days: int = setting("ENF_REFRESH_TOKEN_DAYS", 365, minimum=1, maximum=3650)
    nonce_ttl_seconds: int = setting("ENF_NONCE_TTL_SECONDS", 3600, minimum=60, maximum=86_400)
    code_ttl_hours: int = setting("ENF_CODE_TTL_HOURS", 24, minimum=1, maximum=72)
    upload_token_ttl_hours: int = setting("ENF_UPLOAD_TOKEN_TTL_HOURS", 24, minimum=1, maximum=72)
    # Guessing upload codes (docs/operations.md §10 has the arithmetic). A right code is
    # looked up first and never refused by anything another party can use up; only a
    # registration's own wrong codes make it wait. A wrong code makes the next attempt wait
    # this long, and at most so many a UTC day: 10 against 10^6 codes keeps one registration
    # hopeless, and a person who mistypes still has nine more tries.
    verify_min_interval_seconds: int = setting(
        "ENF_VERIFY_MIN_INTERVAL_SECONDS", 1, minimum=0, maximum=3600
    )
    verify_daily_failures: int = setting("ENF_VERIFY_DAILY_FAILURES", 10, minimum=1, maximum=1000)
    # Registrations are cheap to make, so the registration's allowance alone bounds little:
    # wrong codes are also counted per source address and in all. Neither refuses anyone;
    # crossing either raises the guard, under which a registration may give only this many
    # wrong codes since its last right one (a person's first attempts are never refused;
    # a guesser's registration is spent after them) and an address completes fewer
    # registrations. People mistype a few codes an hour in all (a tenth of the codes NCTS
    # issues, at most a few dozen an hour at the busiest): 20 wrong codes an hour from one
    # address, or 200 in all, is guessing.
    verify_guarded_failures: int = setting("ENF_VERIFY_GUARDED_FAILURES", 3, minimum=1, maximum=100)
    verify_failures_per_ip: int = setting("ENF_VERIFY_FAILURES_PER_IP", 20, minimum=1)
    verify_failures_global: int = setting("ENF_VERIFY_FAILURES_GLOBAL", 200, minimum=1)
    verify_failure_window_seconds: int = setting(
        "ENF_VERIFY_FAILURE_WINDOW_SECONDS", 3600, minimum=60, maximum=86_400
    )
    # Once the country-wide count crosses its threshold the guard stays up this long, so a
    # guesser cannot wait for the next window to guess unguarded again.
    verify_guard_hours: int = setting("ENF_VERIFY_GUARD_HOURS", 24, minimum=1, maximum=168)
    # Registrations completed (the device attested) per source address. Nonces and failed
    # attestations count nothing: junk cannot stop installs from a carrier NAT address, and
    # each registration that counts cost a genuine device's attestation. 600 an hour behind
    # one address is a launch-day surge; under the guard, each registration is worth a few
    # guesses, so an address completes 10 an hour (the app retries on its next foreground).
    register_per_ip: int = setting("ENF_REGISTER_PER_IP", 600, minimum=1)
    register_per_ip_guarded: int = setting("ENF_REGISTER_PER_IP_GUARDED", 10, minimum=1)
    register_ip_window_seconds: int = setting(
        "ENF_REGISTER_IP_WINDOW_SECONDS", 3600, minimum=1, maximum=86_400
    )


@dataclass(frozen=True, kw_only=True)
class EnfKeySettings:
    """Key-upload rules (Google's key-server numbers) and key retention."""

    max_keys_per_upload: int = setting(
        "ENF_MAX_KEYS_PER_UPLOAD",
        MAX_KEYS_PER_UPLOAD_CEILING,
        minimum=1,
        maximum=MAX_KEYS_PER_UPLOAD_CEILING,
    )
    max_keys_per_start_interval: int = setting(
        "ENF_MAX_KEYS_PER_START_INTERVAL", 3, minimum=1, maximum=10
    )
    max_key_age_days: int = setting("ENF_MAX_KEY_AGE_DAYS", 15, minimum=1, maximum=30)
    max_symptom_onset_age_days: int = setting(
        "ENF_MAX_SYMPTOM_ONSET_AGE_DAYS", 28, minimum=1, maximum=60
    )
    retention_days: int = setting("ENF_KEY_RETENTION_DAYS", 14, minimum=1, maximum=60)

    def check(self, env: Env) -> None:
        if self.retention_days < MIN_KEY_RETENTION_DAYS:
            env.problems.append(
                f"ENF_KEY_RETENTION_DAYS must be at least {MIN_KEY_RETENTION_DAYS}, "
                f"got {self.retention_days}"
            )


@dataclass(frozen=True, kw_only=True)
class AttestationSettings:
    """Device attestation at ``PUT /register`` (and key upload), one verifier per platform."""

    platforms: tuple[str, ...] = setting(
        "ATTESTATION_PLATFORMS", ("ios", "android"), choices=ATTESTATION_VERIFIERS
    )
    android_package_name: str = setting("ANDROID_PACKAGE_NAME", "nz.govt.health.covidtracer")
    # The root certificate the SafetyNet / Play Integrity chain must end at: one shipped in the
    # package, by name (deployed stages), or a PEM given inline (tests and the local stack).
    android_root: str | None = setting("ANDROID_ATTESTATION_ROOT", None, choices=ANDROID_ROOTS)
    android_root_pem: str | None = setting("ANDROID_ATTESTATION_ROOT_PEM", None)
    android_hostname: str = setting("ANDROID_ATTESTATION_HOSTNAME", "attest.android.com")
    android_max_age_seconds: int = setting("ANDROID_ATTESTATION_MAX_AGE_SECONDS", 600, minimum=10)
    apple_devicecheck_url: str = setting(
        "APPLE_DEVICECHECK_URL", "https://api.devicecheck.apple.com", url=True
    )
    apple_team_id: str | None = setting("APPLE_TEAM_ID", None)
    apple_key_id: str | None = setting("APPLE_KEY_ID", None)
    apple_key_secret_id: str | None = setting("APPLE_DEVICECHECK_KEY_SECRET_ID", None)

    def android_trusted_root(self) -> str | None:
        """The PEM of the root the Android chain must end at, or None if none is set."""
        if self.android_root is not None:
            return _packaged_root(self.android_root)
        return self.android_root_pem

    def check(self, env: Env) -> None:
        if env.stage == "prod" and "test" in self.platforms:
            # The test verifier accepts any device; production must prove a real phone.
            env.problems.append("ATTESTATION_PLATFORMS must not include test in prod")
        if env.stage != "local":
            # Locally a platform may be listed unconfigured: its verifier then refuses devices.
            if "android" in self.platforms and not (self.android_root or self.android_root_pem):
                env.problems.append(
                    "ANDROID_ATTESTATION_ROOT (or ANDROID_ATTESTATION_ROOT_PEM) is required "
                    "for android"
                )
            if "ios" in self.platforms and not (
                self.apple_team_id and self.apple_key_id and self.apple_key_secret_id
            ):
                env.problems.append(
                    "APPLE_TEAM_ID, APPLE_KEY_ID and APPLE_DEVICECHECK_KEY_SECRET_ID are "
                    "required for ios"
                )


@dataclass(frozen=True, kw_only=True)
class SmsSettings:
    """The SMS provider for upload codes: a Twilio-style HTTP API or AWS End User Messaging."""

    provider: str = setting("SMS_PROVIDER", "twilio", choices=SMS_PROVIDERS)
    base_url: str = setting("SMS_BASE_URL", "https://api.twilio.com", url=True)
    account_sid: str | None = setting("SMS_ACCOUNT_SID", None)
    auth_token_secret_id: str | None = setting("SMS_AUTH_TOKEN_SECRET_ID", None)
    sender: str = setting("SMS_SENDER", "NZCOVID")
    timeout_seconds: int = setting("SMS_TIMEOUT_SECONDS", 5, minimum=1, maximum=25)
    message_template: str = setting(
        "ENF_SMS_TEMPLATE",
        "Your NZ COVID Tracer upload code is {code}. It expires in {hours} hours.",
    )

    def check(self, env: Env) -> None:
        if self.provider == "twilio" and not (self.account_sid and self.auth_token_secret_id):
            env.problems.append("SMS_ACCOUNT_SID and SMS_AUTH_TOKEN_SECRET_ID are required")
        if "{code}" not in self.message_template:
            env.problems.append("ENF_SMS_TEMPLATE must contain {code}")


def _parameter(kind: str) -> config.Parser:
    """A Parameter Store path, defaulting to the stage's own; ``-`` means none is read."""

    def parse(env: Env, name: str, default: Any) -> str | None:
        value = env.text(name, f"/covidtracer/{env.stage}/enf/{kind}-config")
        if value == "-":
            return None
        if not value.startswith("/"):
            env.problems.append(f"{name} must be a parameter path (/…) or -")
        return value

    return parse


@dataclass(frozen=True, kw_only=True)
class EnfClientConfigSettings:
    """Where an operator keeps the stage's exposure configuration and notification settings
    (Parameter Store, one JSON document each), and how long a Lambda keeps what it read.
    A parameter that does not exist means the stage default (``covidtracer.enfkeys.
    client_config_store``); ``-`` means none is read at all."""

    exposure_parameter: str | None = setting(
        "ENF_EXPOSURE_CONFIG_PARAMETER", None, parse=_parameter("exposure")
    )
    notification_parameter: str | None = setting(
        "ENF_NOTIFICATION_CONFIG_PARAMETER", None, parse=_parameter("notification")
    )
    # A minute: an operator's change reaches every phone's next check, at one Parameter Store
    # read per document per minute per warm Lambda.
    cache_seconds: int = setting("ENF_CLIENT_CONFIG_CACHE_SECONDS", 60, minimum=0, maximum=3600)


# The metric events (COVID Green's names) and how often one registration may send each. The
# exposure-notification plugin sends the first four (CLIENTS.md): LOG_ERROR is its only
# report that an exposure check failed, so refusing it would hide every such failure.
DEFAULT_METRICS_INTERVALS: Mapping[str, int] = {
    "CONTACT_NOTIFICATION": 3600,
    "DAILY_ACTIVE_TRACE": 86_400,
    "LOG_ERROR": 3600,
    "CALLBACK_REQUEST": 3600,
    "CONTACT_UPLOAD": 86_400,
    "CALLBACK_OPTIN": 3600,
    "UPLOAD_VERIFICATION_FAILED": 60,
    "CHECK_IN": 3600,
}


def _intervals(env: Env, name: str, default: Mapping[str, int]) -> Mapping[str, int]:
    if env.raw(name) is None:
        return dict(default)
    value = env.json_object(name)
    if value is None:
        env.problems.pop()  # one message for every way of being wrong
    if value is None or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in value.items()
    ):
        env.problems.append(f"{name} must be a JSON object of event names to whole seconds")
        return dict(default)
    return dict(value)


def _json_document(env: Env, name: str, default: Any) -> str | None:
    return env.raw(name) if env.json_object(name) is not None else None


@dataclass(frozen=True, kw_only=True)
class EnfSettings(AwsServiceSettings):
    """The Exposure Notification key server (``services/enf``)."""

    SERVICE = "enf"

    database: DatabaseSettings
    exports_bucket: str = setting("ENF_EXPORTS_BUCKET")
    export_signing_key_id: str = setting("EXPORT_SIGNING_KEY_ID")
    ncts_api_key_secret_id: str = setting("NCTS_API_KEY_SECRET_ID")
    partners: PartnerSettings
    tokens: EnfTokenSettings
    keys: EnfKeySettings
    attestation: AttestationSettings
    sms: SmsSettings
    export: EnfExportSettings
    # Per-registration minimum seconds between two metrics of one event; unlisted events
    # are refused. JSON object, e.g. {"CONTACT_UPLOAD": 86400}.
    metrics_intervals: Mapping[str, int] = setting(
        "ENF_METRICS_INTERVALS", DEFAULT_METRICS_INTERVALS, parse=_intervals
    )
    callback_interval_seconds: int = setting("ENF_CALLBACK_INTERVAL_SECONDS", 3600, minimum=0)
    # Registrations are cheap, so per-registration intervals alone let one address pump
    # call-back requests into the contact tracers' queue and metrics into the counts. A
    # call-back a minute per address is far above what an alert wave brings from one carrier
    # address; metrics come from every phone now and then (a few a day each).
    callback_per_ip: int = setting("ENF_CALLBACK_PER_IP", 60, minimum=1)
    metrics_per_ip: int = setting("ENF_METRICS_PER_IP", 3000, minimum=1)
    per_ip_window_seconds: int = setting(
        "ENF_PER_IP_WINDOW_SECONDS", 3600, minimum=60, maximum=86_400
    )
    # The stage's default documents served to phones (None: the ones shipped in the package);
    # an operator's document in Parameter Store (``client_config``) takes their place.
    exposure_config_json: str | None = setting("ENF_EXPOSURE_CONFIG", None, parse=_json_document)
    notification_config_json: str | None = setting(
        "ENF_NOTIFICATION_CONFIG", None, parse=_json_document
    )
    client_config: EnfClientConfigSettings
    # Google's contract beside COVID Green's: /api/verify, /api/certificate, /v1/publish.
    verification: VerificationSettings
    publish: PublishSettings

    @property
    def attestation_platforms(self) -> tuple[str, ...]:
        return self.attestation.platforms


enf_settings = config.cached(EnfSettings.from_env)


@functools.cache
def _packaged_root(name: str) -> str:
    """A root certificate shipped in the package (read once: every attestation needs it)."""
    roots = resources.files("covidtracer.enfkeys").joinpath("attestation_roots")
    return roots.joinpath(f"{name}.pem").read_text()
