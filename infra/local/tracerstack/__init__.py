"""The local stack: the whole backend on one machine with no AWS account (DESIGN §5)."""

from __future__ import annotations

import argparse
import socket
import threading
from http.server import HTTPServer
from pathlib import Path

# infra/local/tracerstack -> repository root
REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = REPO_ROOT / "infra" / "templates"
SERVICES = REPO_ROOT / "services"
SERVICE_NAMES = ("auth", "details", "export", "enf")  # the Chalice apps under SERVICES


def free_port() -> int:
    """A TCP port free on the loopback address now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def in_thread[S: HTTPServer](server: S, name: str) -> S:
    """``server`` serving from a daemon thread (it stops with the test process)."""
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


def serve(server: HTTPServer, name: str) -> None:
    """Serve ``server`` in the foreground, after saying where."""
    host, port = server.server_address[:2]
    print(f"{name} listening on http://{host!s}:{port}", flush=True)
    server.serve_forever()


def server_arguments(description: str, port: int) -> argparse.ArgumentParser:
    """The command line of a local stand-in server: ``--host`` and ``--port``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    return parser
