"""The app API (DESIGN §2): one blueprint per capability (``chalicelib``), each a routing
table whose handlers decode, call one service, encode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Blueprint
from chalicelib import contactdetails, diary, exposures, health, signin

from covidtracer import logs
from covidtracer.http import ApiApp, _map_errors


class _DetailsApp(ApiApp):
    """``ApiApp`` whose blueprint routes get its error mapping too: Chalice registers them
    through ``_register_handler``, never through ``ApiApp.route``. Until ``covidtracer.http``
    does this itself (notes/requests-details.md)."""

    def _register_handler(
        self,
        handler_type: str,
        name: str,
        user_handler: Callable[..., Any],
        wrapped_handler: Callable[..., Any],
        kwargs: Any,
        options: dict[Any, Any] | None = None,
    ) -> None:
        if handler_type == "route":
            user_handler = _map_errors(user_handler)
        super()._register_handler(
            handler_type, name, user_handler, wrapped_handler, kwargs, options
        )


logs.configure()
app = _DetailsApp("covidtracer-details")
BLUEPRINTS: tuple[Blueprint, ...] = (
    health.bp,
    signin.bp,
    contactdetails.bp,
    diary.bp,
    exposures.bp,
)
for blueprint in BLUEPRINTS:
    app.register_blueprint(blueprint)

# The feed job under the name the local stack's job runner looks up (tracerstack.jobs).
publish_exposure_events_feed = exposures.publish_exposure_events_feed
