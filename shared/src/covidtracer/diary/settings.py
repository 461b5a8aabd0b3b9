"""Settings of diary uploads: retention, size bound, clock skew, consent-code guess limits.

Read as ``details_settings().diary``, with the rest of the details app's settings (every
problem reported at once).
"""

from __future__ import annotations

from dataclasses import dataclass

from covidtracer.config import setting


@dataclass(frozen=True, kw_only=True)
class DiarySettings:
    """Diary uploads (DESIGN §2.3)."""

    # Diary entries are kept 60 days (DESIGN §8): older ones never leave the backend.
    retention_days: int = setting("DIARY_RETENTION_DAYS", 60, minimum=1, maximum=365)
    # Older apps send the whole 60-day diary at once (CLIENTS.md): thousands of entries for a
    # heavy user. So the upload is bounded by size, as in AWS: Lambda takes a request of at
    # most 6 MB (API Gateway's own limit, 10 MB, is higher), ~30,000 typical entries.
    max_body_bytes: int = setting(
        "DIARY_MAX_BODY_BYTES", 6_000_000, minimum=100_000, maximum=6_000_000
    )
    # Phones' clocks drift; an entry a few minutes "in the future" is still a real visit.
    clock_skew_seconds: int = setting("DIARY_CLOCK_SKEW_SECONDS", 300, minimum=0, maximum=3600)
    # Consent-code guesses (codes NCTS refused; docs/operations.md §10). Only NCTS can judge
    # a consent code, so an address that keeps guessing must be stopped before its next one
    # is forwarded: per source address, generous, because a carrier-grade NAT puts many
    # phones behind one and a person mistypes a code once or twice. Guesses in all refuse
    # nobody: past ``guesses_global`` in a window they are reported (a metric, which an
    # alarm watches) and every address's allowance shrinks to ``guesses_per_ip_guarded``.
    guesses_per_ip: int = setting("DIARY_GUESSES_PER_IP", 20, minimum=1)
    guesses_per_ip_guarded: int = setting("DIARY_GUESSES_PER_IP_GUARDED", 5, minimum=1)
    guesses_global: int = setting("DIARY_GUESSES_GLOBAL", 1_000, minimum=1)
    guess_window_seconds: int = setting(
        "DIARY_GUESS_WINDOW_SECONDS", 3_600, minimum=60, maximum=86_400
    )
