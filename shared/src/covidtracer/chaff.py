"""Chaff: fake requests that a network observer cannot tell from real uploads.

Google's mechanism (google/exposure-notifications-server ``internal/middleware`` ProcessChaff
with github.com/mikehelmick/go-chaff; the verification server's docs/api.md "Chaffing
requests"): a request carrying an ``X-Chaff`` header is answered without being processed,
after about as long as real answers of that route take and with a body about as large, so
a phone can send them at random and an observer sees the same traffic whether or not its
owner uploaded. A chaff request changes nothing: no row, no rate-limit count, no event.

``Tracker`` keeps the sizes and latencies of the route's recent real answers (thread-safe:
a threaded host serves requests concurrently); the HTTP side is ``covidtracer.http``.
"""

from __future__ import annotations

import base64
import os
import random
import threading
from collections import deque
from dataclasses import dataclass

HEADER = "x-chaff"
# go-chaff DefaultCapacity: the real answers the averages are taken over.
CAPACITY = 128
# internal/publish/config.go CHAFF_REQUEST_MAX_LATENCY_MS default 1000.
MAX_LATENCY_MS = 1000


@dataclass(frozen=True)
class Plausible:
    """What a chaff answer should look like: its body size and how long to take."""

    size: int
    latency_ms: float


class Tracker:
    """The last ``capacity`` real answers of one route: (body size, latency)."""

    def __init__(
        self,
        *,
        default_size: int,
        default_latency_ms: float,
        capacity: int = CAPACITY,
        max_latency_ms: int = MAX_LATENCY_MS,
        rng: random.Random | None = None,
    ) -> None:
        self._answers: deque[tuple[int, float]] = deque(maxlen=capacity)
        self._default = Plausible(default_size, default_latency_ms)
        self._max_latency_ms = max_latency_ms
        self._lock = threading.Lock()
        self._rng = rng or random.SystemRandom()

    def record(self, size: int, latency_ms: float) -> None:
        with self._lock:
            self._answers.append((size, latency_ms))

    def plausible(self) -> Plausible:
        """A size and latency drawn from the recent real answers (the defaults until there
        are some): one of them at random, so chaff follows their spread, not just their
        mean; latency capped at ``max_latency_ms``."""
        with self._lock:
            answer = self._rng.choice(self._answers) if self._answers else None
        if answer is None:
            return self._default
        size, latency = answer
        return Plausible(size, min(latency, self._max_latency_ms))


def is_chaff(headers: object) -> bool:
    """Whether the request asks to be chaff: any ``X-Chaff`` header (docs/api.md sends
    ``X-Chaff: 1``; Google's middleware looks only for the header)."""
    getter = getattr(headers, "get", None)
    return bool(getter and getter(HEADER) is not None)


def padding_text(size: int) -> str:
    """``size`` characters of base64 text of random bytes (Google's padding is that)."""
    raw = os.urandom(max(0, size) * 3 // 4 + 3)
    return base64.b64encode(raw).decode("ascii")[: max(0, size)]
