"""``chalice local`` as the local stack runs it: Chalice's own CLI and server, with two
things a developer's machine needs that Chalice leaves out.

- A realistic listen backlog: ``socketserver`` listens with a backlog of 5, so 20 clients
  connecting at once get connection resets before the threaded server accepts them.
  Servers here accept ``LISTEN_BACKLOG`` pending connections, as werkzeug (moto) does.
- Unknown routes in the documented error shape: Chalice's local gateway answers them, before
  the app runs, with API Gateway's raw ``{"message": "Missing Authentication Token"}``. Here
  they get the app's own ``urn:errors:not-found`` problem body (in AWS, the API's gateway
  responses do the same).
- Each request's real peer address as ``requestContext.identity.sourceIp``, as API Gateway
  reports it: Chalice's local gateway says ``127.0.0.1`` for everyone, so no per-address
  limit could be exercised locally. The address comes from the socket, never from a header
  such as ``X-Forwarded-For`` that any client can write.

Run in a service's folder exactly like the CLI: ``python -m tracerstack.chalice_local local
--no-autoreload --stage local --host 127.0.0.1 --port 8000``.
"""

from __future__ import annotations

import json
import os
from typing import Any

# What werkzeug and most servers use; enough for a burst of clients on one machine.
LISTEN_BACKLOG = 128


def _problem_for(error: Any) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the documented error for a local-gateway refusal."""
    from covidtracer.errors import NotFound

    problem = NotFound()
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        **{k: v for k, v in (error.headers or {}).items() if k.lower().startswith("x-amzn-")},
    }
    return problem.status, headers, json.dumps(problem.body()).encode()


SETTINGS_GIVEN = "COVIDTRACER_SETTINGS_GIVEN"


def install() -> None:
    """Patch Chalice's local server classes (this process only)."""
    from chalice import local

    local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
    # Chalice writes the headers and the body in two sends on a kept-alive connection: with
    # Nagle's algorithm the body waits for the client's delayed ACK, ~40 ms per answer.
    local.ChaliceRequestHandler.disable_nagle_algorithm = True

    def send_error_response(self: Any, error: Any) -> None:
        status, headers, body = _problem_for(error)
        self._send_http_response(status, headers, body)

    local.ChaliceRequestHandler._send_error_response = send_error_response  # type: ignore[method-assign]

    chalice_setup = local.ChaliceRequestHandler.setup

    def setup(self: Any) -> None:
        # One handler (and one gateway) per connection: its peer is every request's source.
        chalice_setup(self)
        self.local_gateway.event_converter.LOCAL_SOURCE_IP = self.client_address[0]

    local.ChaliceRequestHandler.setup = setup  # type: ignore[method-assign]


def main() -> None:
    from chalice.cli import main as chalice_main

    install()
    # The stack and the tests hand this process every setting; a developer's running stack
    # must not fill in what a test left out on purpose (covidtracer.config).
    os.environ[SETTINGS_GIVEN] = "1"
    chalice_main()


if __name__ == "__main__":
    main()
