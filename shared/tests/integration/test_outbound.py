"""The partner client's deadlines over real loopback sockets (issue 20, item 4)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from covidtracer import outbound


@pytest.fixture
def full_backlog() -> Iterator[str]:
    """A port whose listen queue is full and never drained: a new connection is never made
    (the kernel drops its SYN), as with a partner whose address no longer answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the queue; connects past it block in the kernel
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/messages"
    for sock in (*fillers, listener):
        sock.close()


def test_a_partner_that_cannot_be_reached_costs_the_connect_deadline_not_the_read_timeout(
    full_backlog: str,
) -> None:
    started = time.monotonic()
    with pytest.raises(outbound.Unreachable):
        outbound.post(full_backlog, dependency="ncts", timeout=10, json={}, retries=0)
    elapsed = time.monotonic() - started
    # 2 s to connect (outbound.CONNECT_TIMEOUT_SECONDS), not the 10 s given for the answer.
    assert 1.5 <= elapsed < 5, f"{elapsed:.1f} s"
