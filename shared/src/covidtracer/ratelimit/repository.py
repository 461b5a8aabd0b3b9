"""Counters of the rate limiter: DynamoDB (atomic ``ADD``) and an in-memory twin for tests."""

from __future__ import annotations

from typing import Protocol

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from covidtracer import dynamo


class Counters(Protocol):
    def hit(self, bucket: str, expires_at: int) -> int:
        """Count one hit in ``bucket``; returns the count including it."""

    def release(self, bucket: str) -> None:
        """Take back one hit counted in ``bucket`` (a refused or refunded request)."""


class RateLimitItem(Model):
    bucket = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    # TTL attribute (epoch seconds): only tidies up old windows.
    expiresAt = NumberAttribute()  # noqa: N815 - the table's attribute name


class DynamoCounters:
    """One item per (limit, subject, window); ``UpdateItem ADD`` makes each hit atomic."""

    def __init__(self, table_name: str) -> None:
        self._model = dynamo.bind(RateLimitItem, table_name)

    def hit(self, bucket: str, expires_at: int) -> int:
        """Raises ``Unavailable`` when DynamoDB does not answer."""
        item = self._model(bucket)
        try:
            item.update(
                actions=[
                    self._model.hits.add(1),
                    self._model.expiresAt.set(expires_at),
                ]
            )
        except PynamoDBException as error:
            raise dynamo.unavailable("rate_limits", error) from error
        return int(item.hits)

    def release(self, bucket: str) -> None:
        """Raises ``Unavailable`` when DynamoDB does not answer."""
        item = self._model(bucket)
        try:
            # Only an existing bucket: a refund never creates an item (it would lack a TTL).
            item.update(
                actions=[self._model.hits.add(-1)],
                condition=self._model.bucket.exists(),
            )
        except PynamoDBException as error:
            if dynamo.is_conditional_check_failure(error):
                return
            raise dynamo.unavailable("rate_limits", error) from error


class MemoryCounters:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def hit(self, bucket: str, expires_at: int) -> int:
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        return self.counts[bucket]

    def release(self, bucket: str) -> None:
        if bucket in self.counts:
            self.counts[bucket] -= 1
