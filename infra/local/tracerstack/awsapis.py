"""moto in server mode, as the local stack and the tests run it: with DynamoDB's atomicity,
CloudWatch Logs' subscription filter patterns, and IAM enforced on the services' execution
roles (``tracerstack.iam.gate``).

DynamoDB applies each write to an item atomically — ``UpdateItem ADD`` is how the rate
limiter counts — but moto's server runs requests on threads with no lock, so two concurrent
``ADD``s can read the same count. Writes are therefore applied one at a time here, as
DynamoDB would order them; reads stay concurrent.

moto hands every log event to a log group's subscriptions whatever their filter pattern;
CloudWatch Logs hands on only the events the pattern matches (the analytics events, out of
a function's log), so the pattern is applied here (``cloudwatch.matches``).

    python -m tracerstack.awsapis --host 127.0.0.1 --port 5000
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import ThreadedMotoServer

from tracerstack import cloudwatch

_WRITES = {
    "DynamoDB_20120810." + name
    for name in (
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
    )
}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_atomic_dynamodb_writes(app: WsgiApp) -> WsgiApp:
    lock = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET") in _WRITES:
            with lock:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return serve


def apply_subscription_filter_patterns() -> None:
    """Make moto's log streams pass a subscription only the events its pattern matches."""
    from moto.logs.models import LogStream

    send = LogStream._send_log_events
    if getattr(send, "applies_patterns", False):
        return

    def send_matching(
        self: Any, service: str, destination_arn: str, filter_name: str, log_events: list[Any]
    ) -> None:
        pattern = self.log_group.subscription_filters[filter_name].filter_pattern
        # A pattern the stand-in cannot read keeps moto's own behaviour: everything.
        with contextlib.suppress(ValueError):
            log_events = [e for e in log_events if cloudwatch.matches(pattern, e["message"])]
        if log_events:
            send(self, service, destination_arn, filter_name, log_events)

    send_matching.applies_patterns = True  # type: ignore[attr-defined]
    LogStream._send_log_events = send_matching  # type: ignore[method-assign]


def start(host: str, port: int) -> ThreadedMotoServer:
    """A moto server on ``host:port`` in a thread of this process, started; its IAM gate is
    ``server.iam_gate`` (the denials it recorded)."""
    from tracerstack.iam.gate import IamGate

    apply_subscription_filter_patterns()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    # werkzeug reads ``server.app`` for each request.
    wsgi = server._server  # moto exposes no hook for middleware
    assert wsgi is not None
    gate = IamGate(with_atomic_dynamodb_writes(wsgi.app))
    wsgi.app = gate
    server.iam_gate = gate
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    server = start(args.host, args.port)
    assert server._thread is not None
    server._thread.join()


if __name__ == "__main__":
    main()
