"""A TCP proxy that tests cut and restore, to take a dependency away mid-request.

``TcpProxy(port)`` forwards a free loopback port to ``127.0.0.1:port``. ``cut()`` drops
every open connection (as a server that died would) and refuses new ones until
``restore()``; the dependency itself (the shared PostgreSQL, moto) is never touched, so
other tests using it are not disturbed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpProxy:
    def __init__(
        self, target_port: int, target_host: str = "127.0.0.1", unix_socket: str | None = None
    ) -> None:
        self._target = (target_host, target_port)
        self._unix_socket = unix_socket
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self.restore()

    # ------------------------------------------------------------------ control

    def restore(self) -> None:
        """Accept connections again (on the same port)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones: the dependency is gone."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._open = set(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ forwarding

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if self._unix_socket is None:
            return socket.create_connection(self._target, timeout=5)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.settimeout(5)
        upstream.connect(self._unix_socket)
        return upstream

    @classmethod
    def for_url(cls, url: str, default_port: int) -> TcpProxy:
        """A proxy to the server of ``url``: TCP, or PostgreSQL's unix socket when the URL
        names a socket directory (``?host=/tmp/…``, as the embedded server's does)."""
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(url)
        port = parts.port or default_port
        directory = parse_qs(parts.query).get("host", [""])[0]
        if directory.startswith("/"):
            return cls(port, unix_socket=f"{directory}/.s.PGSQL.{port}")
        return cls(port, parts.hostname or "127.0.0.1")

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.difference_update((source, sink))
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def with_port(url: str, port: int) -> str:
    """``url`` (postgresql://… or http://…) pointed at the proxy: its host and port
    replaced by the proxy's loopback port, a unix-socket ``host=`` parameter dropped."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "host"])
    return urlunsplit(parts._replace(netloc=netloc, query=query))
