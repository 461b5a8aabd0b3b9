"""Settings of diary uploads: retention, size bound, clock skew, consent-code guess limits.

``DiarySettings`` is read with the rest of the details app's settings (``details_settings``:
every problem reported at once)."""

from __future__ import annotations

from covidtracer.settings import DiarySettings, details_settings

__all__ = ["DiarySettings", "details_settings"]
