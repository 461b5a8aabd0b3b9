"""Issue 20, item 5: NCTS sends exposure events concurrently and every one is accepted and
published; none gets a 503 because another request was writing the feed at the same time.

Real HTTP to the app under ``chalice local`` (threaded, as the local stack runs it), real
threads, DynamoDB and S3 in moto over HTTP: the feed's conditional writes race for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from conftest import stack_of_its_own
from test_exposure_events import PATH, feed_item, read_feed

from tracerstack.bootstrap import Bootstrap
from tracerstack.details_fakes import exposure_event
from tracerstack.pytest_plugin import serve_api

EVENTS = 100
CONCURRENT = 20

# A stack of its own: the feed must hold this module's events only.
aws_stack = stack_of_its_own()


@pytest.fixture(scope="module")
def served(stack_env: dict[str, str]) -> Iterator[str]:
    with serve_api("details", stack_env) as url:
        yield url


def test_100_distinct_events_at_20_concurrent_are_all_accepted_and_all_in_the_feed(
    served: str, ncts_key: dict[str, str], aws_stack: Bootstrap
) -> None:
    now = datetime.now(UTC)
    bodies = [exposure_event(f"conc{n:04d}", now=now, days_ago=1 + n / 100) for n in range(EVENTS)]

    def send(body: dict[str, Any]) -> tuple[int, str]:
        response = requests.post(f"{served}{PATH}", json=body, headers=ncts_key, timeout=60)
        return response.status_code, response.text

    with ThreadPoolExecutor(CONCURRENT) as pool:
        answers = list(pool.map(send, bodies))

    pairs = zip(bodies, answers, strict=True)
    refused = [(body["notificationId"], answer) for body, answer in pairs if answer[0] != 201]
    assert refused == [], f"{len(refused)} of {EVENTS} refused"
    feed, _ = read_feed(aws_stack)
    published = {item["notificationId"]: item for item in feed["items"]}
    assert sorted(published) == sorted(body["notificationId"] for body in bodies)
    assert all(published[body["notificationId"]] == feed_item(body) for body in bodies)
