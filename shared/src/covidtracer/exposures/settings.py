"""Settings of exposure events: the feed (bucket, window, key, cache age), the NCTS key's
secret and the callback limits.

Read as ``details_settings().events``, with the rest of the details app's settings (every
problem reported at once).
"""

from __future__ import annotations

from dataclasses import dataclass

from covidtracer.config import setting


@dataclass(frozen=True, kw_only=True)
class ExposureEventSettings:
    """Exposure events of interest, their feed, and the callback requests they allow."""

    # The bucket CloudFront serves the feed from, and the secret holding the key NCTS
    # presents on its calls.
    feed_bucket: str = setting("FEED_BUCKET")
    ncts_api_key_secret_id: str = setting("NCTS_API_KEY_SECRET_ID")
    feed_active_days: int = setting("FEED_ACTIVE_DAYS", 14, minimum=1, maximum=60)
    feed_object_key: str = setting("FEED_OBJECT_KEY", "current-exposure-events.json")
    feed_max_age_seconds: int = setting("FEED_MAX_AGE_SECONDS", 300, minimum=0, maximum=86_400)
    # Callbacks forwarded to the contact tracers. Per phone and event: a person asks a few
    # times at most; beyond that a request is answered and not sent again. Per IP (what an
    # address can pump into the tracers' queue): generous, because NZ mobile networks put
    # many phones behind one carrier-grade NAT address. Junk that proves no event counts in
    # neither.
    callback_limit_per_phone: int = setting("CALLBACK_LIMIT_PER_PHONE", 5, minimum=1)
    callback_phone_window_seconds: int = setting(
        "CALLBACK_PHONE_WINDOW_SECONDS", 86_400, minimum=1, maximum=604_800
    )
    callback_limit_per_ip: int = setting("CALLBACK_LIMIT_PER_IP", 100, minimum=1)
    callback_ip_window_seconds: int = setting(
        "CALLBACK_IP_WINDOW_SECONDS", 3_600, minimum=1, maximum=604_800
    )
