"""Settings of contact details: the ``PersonalDetails`` and ``Users`` tables and the user
pool, read with the rest of the details app's settings (``details_settings``: every problem
reported at once)."""

from __future__ import annotations

from covidtracer.settings import DetailsSettings, details_settings

__all__ = ["DetailsSettings", "details_settings"]
