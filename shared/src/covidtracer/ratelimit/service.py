"""Enforcing rate limits: count a hit against each limit, refuse when one is exceeded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from covidtracer.errors import TooManyRequests
from covidtracer.ratelimit.model import Limit

if TYPE_CHECKING:
    from covidtracer.ratelimit.repository import Counters


def enforce(counters: Counters, checks: Sequence[tuple[Limit, str]], now: datetime) -> None:
    """Counts one hit for each (limit, subject); raises ``TooManyRequests`` (with the longest
    wait) when any count is over its limit, ``Unavailable`` when the store does not answer.

    Every limit is counted even after one is exceeded, so a caller cannot spread attempts
    across subjects to stay under one of them.
    """
    epoch = int(now.timestamp())
    waits = []
    for limit, subject in checks:
        count = counters.hit(limit.bucket(subject, epoch), limit.window_end(epoch))
        if count > limit.max_hits:
            waits.append(limit.retry_after(epoch))
    if waits:
        raise TooManyRequests(max(waits))
