"""Fixed-window rate limits against the real table: the limit holds under concurrency."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from covidtracer.errors import TooManyRequests
from covidtracer.ratelimit.model import Limit
from covidtracer.ratelimit.repository import DynamoCounters
from covidtracer.ratelimit.service import enforce

NOW = datetime(2026, 11, 22, 6, 0, 50, tzinfo=UTC)


def test_concurrent_hits_never_exceed_the_limit(service_env: dict[str, str]) -> None:
    counters = DynamoCounters(service_env["RATE_LIMITS_TABLE"])
    limit = Limit(f"race-{uuid.uuid4().hex[:8]}", max_hits=5, window_seconds=900)

    def attempt(_: int) -> bool:
        try:
            enforce(counters, [(limit, "subject")], NOW)
        except TooManyRequests:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = list(pool.map(attempt, range(20)))
    assert allowed.count(True) == 5


def test_the_next_window_starts_afresh_and_retry_after_counts_to_its_start(
    service_env: dict[str, str],
) -> None:
    counters = DynamoCounters(service_env["RATE_LIMITS_TABLE"])
    limit = Limit(f"window-{uuid.uuid4().hex[:8]}", max_hits=1, window_seconds=900)
    enforce(counters, [(limit, "subject")], NOW)
    with pytest.raises(TooManyRequests) as refused:
        enforce(counters, [(limit, "subject")], NOW)
    assert refused.value.retry_after_seconds == 900 - 50
    enforce(counters, [(limit, "subject")], NOW.replace(minute=15, second=0))
