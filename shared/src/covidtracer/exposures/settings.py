"""Settings of exposure events: the feed's window, key and cache age, the callback limits
(``ExposureEventSettings``), the feed bucket and the NCTS key's secret — read with the rest
of the details app's settings (``details_settings``: every problem reported at once)."""

from __future__ import annotations

from covidtracer.settings import ExposureEventSettings, details_settings

__all__ = ["ExposureEventSettings", "details_settings"]
