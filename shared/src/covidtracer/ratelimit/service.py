"""Enforcing rate limits so that they protect people rather than lock them out (DESIGN §8).

- A request refused (by any limit) is not counted against any other: an address over its
  limit that sends someone's phone number uses up nothing of that person's allowance.
- A request the server answers 503 is refunded: the 503 promises a retry, and the retry
  must not find the allowance spent on the outage.
- A caller decides what to count: ``Tally.refund`` also undoes a count whose outcome turned
  out harmless (a genuine diary is not a consent-code guess).

``counted`` is the usual way in: counts made inside it are refunded when the block raises
``TooManyRequests`` or ``Unavailable``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from covidtracer.errors import TooManyRequests, Unavailable
from covidtracer.logs import get_logger
from covidtracer.ratelimit.model import Limit

if TYPE_CHECKING:
    from covidtracer.ratelimit.repository import Counters

log = get_logger(__name__)


class Tally:
    """The hits one request counted, so they can be given back."""

    def __init__(self, counters: Counters, now: datetime) -> None:
        self._counters = counters
        self._epoch = int(now.timestamp())
        self._held: list[str] = []

    def count(self, checks: Sequence[tuple[Limit, str]]) -> list[int]:
        """Counts one hit for each (limit, subject); returns the counts, this hit included.
        Raises ``TooManyRequests`` (with the longest wait) when any is over its limit, after
        giving back every hit this call made; ``Unavailable`` when the store does not answer."""
        waits, hits, counts = [], [], []
        try:
            for limit, subject in checks:
                bucket = limit.bucket(subject, self._epoch)
                count = self._counters.hit(bucket, limit.window_end(self._epoch))
                hits.append(bucket)
                counts.append(count)
                if count > limit.max_hits:
                    waits.append(limit.retry_after(self._epoch))
        except Unavailable:
            self._release(hits)
            raise
        if waits:
            self._release(hits)
            raise TooManyRequests(max(waits))
        self._held.extend(hits)
        return counts

    def note(self, limit: Limit, subject: str) -> int:
        """Counts one hit that refuses nothing (a signal another rule reads: its
        ``max_hits`` is the signal's threshold); returns the count, this hit included. It
        is given back with the others."""
        bucket = limit.bucket(subject, self._epoch)
        count = self._counters.hit(bucket, limit.window_end(self._epoch))
        self._held.append(bucket)
        return count

    def refund(self) -> None:
        """Gives back every hit counted so far."""
        held, self._held = self._held, []
        self._release(held)

    def _release(self, buckets: Sequence[str]) -> None:
        for bucket in buckets:
            try:
                self._counters.release(bucket)
            except Unavailable as error:
                # The hit stays counted until its window ends: a refund lost to an outage
                # costs one hit, never the request's own answer.
                log.warning("rate limit refund lost", extra={"reason": str(error)})


@contextmanager
def counted(counters: Counters, now: datetime) -> Iterator[Tally]:
    """A ``Tally`` whose counts are refunded if the block raises ``TooManyRequests`` (a
    later limit refused the request) or ``Unavailable`` (the server answers 503)."""
    tally = Tally(counters, now)
    try:
        yield tally
    except (TooManyRequests, Unavailable):
        tally.refund()
        raise


def enforce(counters: Counters, checks: Sequence[tuple[Limit, str]], now: datetime) -> None:
    """Counts one hit for each (limit, subject), or none if any is over its limit (then
    ``TooManyRequests`` with the longest wait); ``Unavailable`` when the store does not
    answer. For a request whose work cannot fail afterwards; see ``counted``."""
    Tally(counters, now).count(checks)
