"""The production counters: DynamoDB's ``RateLimits`` table (the details API and sign-in).

The ENF API counts in PostgreSQL instead (``SqlCounters``, inside its own transactions), so
it builds its counters itself. ratelimit has no ``settings.py``: each limit is a knob of the
use case it protects, declared in that domain's settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from covidtracer.ratelimit.repository import Counters


def dynamo_counters(table_name: str) -> Counters:
    """Counters in ``table_name`` (pynamodb loads here, on first use)."""
    from covidtracer.ratelimit.repository import DynamoCounters

    return DynamoCounters(table_name)
