"""Issue 20, item 6: the local server (``tracerstack.chalice_local``) answers every method in
the documented error shape, over real HTTP on one kept-alive connection.

A method API Gateway has no notion of (TRACE, QUERY, CONNECT, any other token) is its
MISSING_AUTHENTICATION_TOKEN refusal, "including the cases when the client attempts to
invoke an unsupported API method or resource" (API Gateway developer guide, "Gateway
response types"), which the API's gateway responses turn into the documented
``urn:errors:not-found`` (``tracerstack.package``); the local server answered Python's 501
HTML page instead. A HEAD answer has no body: a body there is read as the start of the next
answer on the same connection.

The tests speak HTTP/1.1 on a raw socket, as a client that keeps its connection alive: each
sends a request and then ``GET /health`` on the same connection, and reads the answers back
by the protocol's rules (no body after HEAD, else ``Content-Length`` bytes).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from tracerstack.bootstrap import Bootstrap
from tracerstack.environment import service_environment
from tracerstack.pytest_plugin import Partners, serve_api

NOT_FOUND = {"type": "urn:errors:not-found", "title": "The resource was not found.", "status": 404}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One kept-alive connection; answers are read strictly by HTTP/1.1's framing."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        self._buffer = b""

    def close(self) -> None:
        self._sock.close()

    def send(self, method: str, path: str, body: bytes = b"") -> None:
        head = f"{method} {path} HTTP/1.1\r\nHost: local\r\nContent-Length: {len(body)}\r\n"
        self._sock.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n" + body)

    def answer(self, method: str) -> Answer:
        while b"\r\n\r\n" not in self._buffer:
            self._receive()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        assert status_line.startswith("HTTP/1.1 "), status_line  # in step with the server
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._receive()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Answer(int(status_line.split()[1]), headers, body)

    def _receive(self) -> None:
        data = self._sock.recv(65536)
        assert data, "the server closed the connection"
        self._buffer += data


@pytest.fixture(scope="module", params=["enf", "details"])
def served(
    request: pytest.FixtureRequest, aws_stack: Bootstrap, partners: Partners, database_url: str
) -> Iterator[str]:
    """The service under the local server, once for the module (``/health`` needs a database
    to reach, not a schema)."""
    env = service_environment(aws_stack, partners_url=partners.url, database_url=database_url)
    with serve_api(request.param, env) as url:
        yield url


@pytest.fixture
def connection(served: str) -> Iterator[Connection]:
    conn = Connection(served)
    try:
        yield conn
    finally:
        conn.close()


def _then_health_is_whole(conn: Connection) -> None:
    """After the answer under test, the same connection carries /health's answer, whole."""
    conn.send("GET", "/health")
    answer = conn.answer("GET")
    assert answer.status == 200, answer
    assert json.loads(answer.body)["status"] == "ok"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("TRACE", "/health"),
        ("QUERY", "/health"),
        ("FOO", "/health"),
        ("CONNECT", "/health"),
        ("TRACE", "/nowhere"),
    ],
)
def test_a_method_api_gateway_does_not_know_gets_the_documented_not_found(
    connection: Connection, method: str, path: str
) -> None:
    connection.send(method, path, body=b'{"probe": true}')  # a body the server must consume
    answer = connection.answer(method)
    assert answer.status == 404, answer
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    assert json.loads(answer.body) == NOT_FOUND
    _then_health_is_whole(connection)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/health", 405),  # as every method a known route lacks (test_hardening)
        ("/nowhere", 404),
    ],
)
def test_a_head_answer_has_no_body_and_the_connection_stays_in_step(
    connection: Connection, path: str, status: int
) -> None:
    connection.send("HEAD", path)
    answer = connection.answer("HEAD")
    assert answer.status == status
    assert answer.headers["cache-control"] == "no-store"
    _then_health_is_whole(connection)
    _then_health_is_whole(connection)
