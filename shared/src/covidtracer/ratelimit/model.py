"""Fixed-window rate-limit rules: which bucket a hit counts in, and when the window ends.

The window's start is part of the bucket key, so a new window is a new item: expiry is
decided here, in code, from ``now`` (DynamoDB's TTL deletes late and only tidies up).
Subjects (phones, IP addresses) are hashed into the key, so the table holds no personal data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """At most ``max_hits`` per ``window_seconds`` for one subject; ``name`` scopes the bucket."""

    name: str
    max_hits: int
    window_seconds: int

    def window_start(self, now_epoch: int) -> int:
        return now_epoch - now_epoch % self.window_seconds

    def window_end(self, now_epoch: int) -> int:
        return self.window_start(now_epoch) + self.window_seconds

    def bucket(self, subject: str, now_epoch: int) -> str:
        digest = hashlib.sha256(f"{self.name}\0{subject}".encode()).hexdigest()[:32]
        return f"{self.name}#{digest}#{self.window_start(now_epoch)}"

    def retry_after(self, now_epoch: int) -> int:
        """Seconds until this window closes (at least 1)."""
        return max(1, self.window_end(now_epoch) - now_epoch)
