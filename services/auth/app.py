"""Cognito custom-auth triggers for passwordless email sign-in (DESIGN §2.1).

The triggers themselves arrive with the sign-in work; this app already carries the shared
logging setup and is packaged and deployed like the others.
"""

from __future__ import annotations

from chalice import Chalice  # type: ignore[attr-defined]

from covidtracer import logs

logs.configure()
app = Chalice(app_name="covidtracer-auth")
app.debug = False
