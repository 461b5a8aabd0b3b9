"""``chalice local`` as the local stack runs it: Chalice's own CLI and server, with the
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
- Every method answered as API Gateway does (``_answer_every_method``): one it has no notion
  of (TRACE, QUERY, any token) gets the same ``urn:errors:not-found`` instead of Python's
  501 HTML page, and a HEAD answer carries no body, which on a kept-alive connection would
  be read as the start of the next answer.

Run in a service's folder exactly like the CLI: ``python -m tracerstack.chalice_local local
--no-autoreload --stage local --host 127.0.0.1 --port 8000``.
"""

from __future__ import annotations

import json
import os
from typing import Any

# What werkzeug and most servers use; enough for a burst of clients on one machine.
LISTEN_BACKLOG = 128


def _problem_for(gateway_headers: dict[str, str] | None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the documented error for a local-gateway refusal (with
    the gateway's ``x-amzn-`` headers, as API Gateway sends them)."""
    from covidtracer.errors import NotFound

    problem = NotFound()
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        **{k: v for k, v in (gateway_headers or {}).items() if k.lower().startswith("x-amzn-")},
    }
    return problem.status, headers, json.dumps(problem.body()).encode()


def _answer_every_method(handler: Any) -> None:
    """Patch ``handler`` (Chalice's request handler class) to answer every method as API
    Gateway does, in the documented shape.

    API Gateway answers a method no route defines with its MISSING_AUTHENTICATION_TOKEN
    response, "including the cases when the client attempts to invoke an unsupported API
    method or resource" (developer guide, "Gateway response types"); the API's gateway
    responses turn it into ``urn:errors:not-found`` (``tracerstack.package``). Chalice
    dispatches only the seven methods API Gateway routes (``do_GET`` …); for any other,
    ``http.server`` would send its 501 HTML page and close the connection. The request's
    body is read first, so a kept-alive connection stays in step.
    """
    parse_request = handler.parse_request
    send_with_body = handler._send_http_response_with_body

    def parse_or_refuse(self: Any) -> bool:
        if not parse_request(self):
            return False  # http.server has answered a malformed request
        if hasattr(self, f"do_{self.command}"):
            return True
        self._parse_payload()  # consume the body
        status, headers, body = _problem_for(None)
        self._send_http_response(status, headers, body)
        return False  # answered: http.server reads the connection's next request

    def send_without_body_for_head(self: Any, code: int, headers: Any, body: Any) -> None:
        if self.command != "HEAD":
            send_with_body(self, code, headers, body)
            return
        # The headers a GET would get, Content-Length included (RFC 9110 9.3.2), no body.
        length = len(body if isinstance(body, bytes) else body.encode("utf-8"))
        self.send_response(code)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        self._send_headers(headers)

    handler.parse_request = parse_or_refuse
    handler._send_http_response_with_body = send_without_body_for_head


SETTINGS_GIVEN = "COVIDTRACER_SETTINGS_GIVEN"


def install() -> None:
    """Patch Chalice's local server classes (this process only)."""
    from chalice import local

    local.ThreadedHTTPServer.request_queue_size = LISTEN_BACKLOG
    # Chalice writes the headers and the body in two sends on a kept-alive connection: with
    # Nagle's algorithm the body waits for the client's delayed ACK, ~40 ms per answer.
    local.ChaliceRequestHandler.disable_nagle_algorithm = True

    def send_error_response(self: Any, error: Any) -> None:
        status, headers, body = _problem_for(error.headers)
        self._send_http_response(status, headers, body)

    local.ChaliceRequestHandler._send_error_response = send_error_response  # type: ignore[method-assign]
    _answer_every_method(local.ChaliceRequestHandler)

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
