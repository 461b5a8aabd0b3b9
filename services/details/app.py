"""The app API (DESIGN §2): one blueprint per capability (``chalicelib``), each a routing
table whose handlers decode, call one service, encode."""

from __future__ import annotations

from chalicelib import contactdetails, diary, exposures, health, signin

from covidtracer import logs, snapstart
from covidtracer.http import ApiApp

logs.configure()
app = ApiApp("covidtracer-details")
for blueprint in (health.bp, signin.bp, contactdetails.bp, diary.bp, exposures.bp):
    app.register_blueprint(blueprint)
# SnapStart's init: what the first request would otherwise pay (covidtracer.snapstart).
snapstart.prepare(
    "chalicelib.signin:deps",
    "covidtracer.contactdetails.wiring:dependencies",
    "covidtracer.diary.wiring:dependencies",
    "covidtracer.exposures.wiring:dependencies",
    imports=("jwt", "cryptography.hazmat.primitives.asymmetric.rsa", "pynamodb.models"),
    clients=("dynamodb", "s3", "cognito-idp", "secretsmanager"),
)

# The feed job under the name the local stack's job runner looks up (tracerstack.jobs).
publish_exposure_events_feed = exposures.publish_exposure_events_feed
