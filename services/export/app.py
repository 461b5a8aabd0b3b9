"""NCTS personal-details export (DESIGN §3): stream handler and scheduled consumer."""

from __future__ import annotations

from chalice import Chalice  # type: ignore[attr-defined]

from covidtracer import logs

logs.configure()
app = Chalice(app_name="covidtracer-export")
app.debug = False
