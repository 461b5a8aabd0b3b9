"""``tracerstack.chalice_local`` reports each request's real peer address as API Gateway
does (``requestContext.identity.sourceIp``), so per-address limits work on the local stack.

Loopback is the whole of 127.0.0.0/8 on Linux: a client that binds 127.0.0.2 reaches the
server on 127.0.0.1 and is seen as 127.0.0.2.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest
from chalice import Chalice
from chalice.config import Config
from chalice.local import LocalDevServer

from tracerstack import chalice_local
from tracerstack.pytest_plugin import free_port, http

echo = Chalice("echo")


@echo.route("/who", methods=["GET", "POST"])
def who() -> dict[str, str]:
    request = echo.current_request
    assert request is not None
    return {"sourceIp": request.context["identity"]["sourceIp"]}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    chalice_local.install()
    port = free_port()
    server = LocalDevServer(echo, Config.create(), "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "127.0.0.9"])
def test_the_source_ip_is_the_peer_address_of_the_connection(url: str, address: str) -> None:
    answer = http("GET", f"{url}/who", source_address=address)
    assert answer.status == 200, answer.body
    assert answer.json() == {"sourceIp": address}


def test_an_x_forwarded_for_header_from_the_client_is_not_believed(url: str) -> None:
    # Anyone can send the header; only a proxy the operator runs may be trusted to set it,
    # and the local stack has none (in AWS, API Gateway takes the address from the socket).
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.8"}
    answer = http("POST", f"{url}/who", {}, headers, source_address="127.0.0.3")
    assert answer.json() == {"sourceIp": "127.0.0.3"}


def test_requests_on_one_kept_alive_connection_keep_their_own_address(url: str) -> None:
    parts = urlsplit(url)
    seen = []
    for address in ("127.0.0.4", "127.0.0.5"):
        connection = HTTPConnection(
            parts.hostname, parts.port, timeout=10, source_address=(address, 0)
        )
        for _ in range(2):
            connection.request("GET", "/who")
            response = connection.getresponse()
            seen.append(response.read())
        connection.close()
    assert [s.decode() for s in seen] == [
        '{"sourceIp":"127.0.0.4"}',
        '{"sourceIp":"127.0.0.4"}',
        '{"sourceIp":"127.0.0.5"}',
        '{"sourceIp":"127.0.0.5"}',
    ]
