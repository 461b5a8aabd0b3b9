"""``POST /v1/publish``'s knobs (``ENF_PUBLISH_*``, ``ENF_REVISION_*``), each declared once.

The numbers are Google's key-server defaults (google/exposure-notifications-server
``internal/publish/config.go`` and ``internal/revision/config.go``); the key-count rules
(30 keys, 3 per start interval, 15 days) are ``EnfKeySettings``', shared with COVID Green's
upload.
"""

from __future__ import annotations

from dataclasses import dataclass

from covidtracer.config import Env, setting

# The healthAuthorityID this deployment's phones publish as, by default.
DEFAULT_APP_ID = "nz.govt.health.covidtracer"


@dataclass(frozen=True, kw_only=True)
class PublishSettings:
    # The healthAuthorityIDs (Google's "authorized apps") that may publish with this
    # deployment's own certificates; other health authorities list theirs in the apps document.
    app_ids: tuple[str, ...] = setting("ENF_PUBLISH_APP_IDS", (DEFAULT_APP_ID,))
    # config.go MAX_SYMPTOM_ONSET_DAYS=14: a key further from the onset is dropped (warning).
    max_symptom_onset_days: int = setting(
        "ENF_PUBLISH_MAX_SYMPTOM_ONSET_DAYS", 14, minimum=1, maximum=28
    )
    # config.go MAX_VALID_SYMPTOM_ONSET_REPORT_DAYS=28 and DEFAULT_SYMPTOM_ONSET_DAYS_AGO=4.
    max_onset_report_days: int = setting(
        "ENF_PUBLISH_MAX_ONSET_REPORT_DAYS", 28, minimum=1, maximum=60
    )
    default_onset_days_ago: int = setting(
        "ENF_PUBLISH_DEFAULT_ONSET_DAYS_AGO", 4, minimum=0, maximum=14
    )
    # config.go RESPONSE_PADDING_MIN_BYTES=1024 and RESPONSE_PADDING_RANGE=1024.
    padding_min_bytes: int = setting("ENF_PUBLISH_PADDING_MIN_BYTES", 1024, minimum=0)
    padding_range_bytes: int = setting("ENF_PUBLISH_PADDING_RANGE_BYTES", 1024, minimum=1)
    # The symmetric KMS key that wraps the revision tokens' AES-256 data keys
    # (revision/config.go REVISION_TOKEN_KEY_ID).
    revision_key_id: str = setting("ENF_REVISION_TOKEN_KEY_ID")
    # revision/config.go REVISION_TOKEN_MIN_LENGTH=28: a token holds at least this many key
    # slots; ours pads to a multiple of it, so its size never tells the key count in a range.
    revision_token_min_keys: int = setting(
        "ENF_REVISION_TOKEN_MIN_KEYS", 28, minimum=1, maximum=100
    )
    # config.go REVISION_KEY_CACHE_DURATION=1m: unwrapped data keys are kept this long.
    revision_key_cache_seconds: int = setting(
        "ENF_REVISION_KEY_CACHE_SECONDS", 60, minimum=0, maximum=3600
    )
    # A retry of the very same publish (same certificate) is answered as the first one was
    # while the certificate is remembered; certificates live 15 minutes.
    certificate_memory_hours: int = setting(
        "ENF_PUBLISH_CERTIFICATE_MEMORY_HOURS", 24, minimum=1, maximum=72
    )

    def check(self, env: Env) -> None:
        if not self.app_ids:
            env.problems.append("ENF_PUBLISH_APP_IDS must name at least one healthAuthorityID")
