"""One contract, two stores: the in-memory twins behave like DynamoDB over moto's HTTP API."""

from __future__ import annotations

from typing import Any

import pytest

from covidtracer.exposures import model
from covidtracer.exposures.repository import DynamoExposureEvents, S3FeedStore
from covidtracer.ratelimit.repository import DynamoCounters, MemoryCounters
from tracerstack.bootstrap import Bootstrap
from tracerstack.details_fakes import MemoryExposureEvents, MemoryFeedStore, twin_or_real

EVENT = {
    "eventId": "a0l4a0000004xhcAAA",
    "notificationId": "n1",
    "gln": "1234567890001",
    "start": "2021-10-04T21:00:00Z",
    "end": "2021-10-04T22:00:00.250Z",
    "systemNotificationBody": "Body",
    "appBannerTitle": "Title",
    "appBannerBody": "Banner",
    "appBannerRequestCallbackEnabled": True,
}


@pytest.fixture(params=["memory", "dynamodb"])
def events(request: pytest.FixtureRequest, service_env: dict[str, str]) -> Any:
    table = service_env["EXPOSURE_EVENTS_TABLE"]
    return twin_or_real(request.param, MemoryExposureEvents, lambda: DynamoExposureEvents(table))


@pytest.fixture(params=["memory", "s3"])
def feed(request: pytest.FixtureRequest, service_env: dict[str, str]) -> Any:
    bucket = service_env["FEED_BUCKET"]
    return twin_or_real(request.param, MemoryFeedStore, lambda: S3FeedStore(bucket))


@pytest.fixture(params=["memory", "dynamodb"])
def counters(request: pytest.FixtureRequest, service_env: dict[str, str]) -> Any:
    table = service_env["RATE_LIMITS_TABLE"]
    return twin_or_real(request.param, MemoryCounters, lambda: DynamoCounters(table))


def test_an_event_round_trips_with_its_push_pending(events: Any) -> None:
    event = model.parse_exposure_event(EVENT)
    assert events.get("n1") is None
    events.put(event, version="v1", expires_at=1)
    stored = events.get("n1")
    assert stored == model.StoredEvent(event, True, "v1", pending=True)
    assert [s.event for s in events.scan()] == [event]


def test_a_push_confirmation_for_an_older_version_leaves_the_newer_one_pending(events: Any) -> None:
    event = model.parse_exposure_event(EVENT)
    events.put(event, version="v1", expires_at=1)
    events.put(event, version="v2", expires_at=1)
    events.mark_pushed("n1", "v1")
    assert events.get("n1").push_pending is True
    events.mark_pushed("n1", "v2")
    assert events.get("n1").push_pending is False
    events.mark_pushed("gone", "v1")  # withdrawn meanwhile: nothing to do, no error


def test_delete_reports_whether_there_was_an_event(events: Any) -> None:
    events.put(model.parse_exposure_event(EVENT), version="v1", expires_at=1)
    assert events.delete("n1") is True
    assert events.delete("n1") is False
    assert events.get("n1") is None


def test_feed_writes_are_conditional_on_the_version_read(feed: Any) -> None:
    key = "contract-feed.json"
    assert feed.read(key) is None and feed.version(key) is None
    feed.write(key, b"one", 300, replaces=None)
    with pytest.raises(model.FeedChanged):
        feed.write(key, b"lost", 300, replaces=None)  # someone created it first
    body, first = feed.read(key)
    assert body == b"one" and feed.version(key) == first
    feed.write(key, b"two", 300, replaces=first)
    with pytest.raises(model.FeedChanged):
        feed.write(key, b"stale", 300, replaces=first)
    body, second = feed.read(key)
    assert body == b"two" and second != first and feed.version(key) == second


def test_counters_count_each_bucket_atomically(counters: Any) -> None:
    assert [counters.hit("b1", 100) for _ in range(3)] == [1, 2, 3]
    assert counters.hit("b2", 100) == 1


def test_dynamodb_down_is_unavailable(
    service_env: dict[str, str], aws_stack: Bootstrap, iam_denials: Any
) -> None:
    from covidtracer.errors import Unavailable

    store = DynamoExposureEvents("no-such-table")
    with pytest.raises(Unavailable):
        store.get("n1")
    assert aws_stack.stage  # the stack itself is fine: only the table is missing
    # Under the role a table outside it is refused by IAM before DynamoDB looks (as in AWS).
    assert {d.resource.rpartition("/")[2] for d in iam_denials()} == {"no-such-table"}


def test_pending_lists_only_events_not_yet_published_and_pushed(events: Any) -> None:
    for n in ("n1", "n2", "n3"):
        events.put(
            model.parse_exposure_event({**EVENT, "notificationId": n}), version="v1", expires_at=1
        )
    events.mark_published("n1", "v1")  # push still pending: stays listed
    events.mark_pushed("n2", "v1")
    events.mark_published("n2", "v1")  # published and pushed: off the list
    events.mark_pushed("n3", "v1")
    events.mark_published("n3", "v0")  # an older version's confirmation: stays listed
    events.mark_published("gone", "v1")  # withdrawn meanwhile: nothing to do, no error
    assert sorted(s.event.notification_id for s in events.pending()) == ["n1", "n3"]
    assert events.get("n2").pending is False and events.get("n1").pending is True
    events.put(
        model.parse_exposure_event({**EVENT, "notificationId": "n2"}), version="v2", expires_at=1
    )
    assert sorted(s.event.notification_id for s in events.pending()) == ["n1", "n2", "n3"]


def test_a_withdrawn_event_leaves_pending_but_stays_readable_until_deleted(events: Any) -> None:
    events.put(
        model.parse_exposure_event({**EVENT, "notificationId": "w1"}), version="v1", expires_at=1
    )
    assert "w1" in [s.event.notification_id for s in events.pending()]
    events.mark_withdrawn("w1")
    assert "w1" not in [s.event.notification_id for s in events.pending()]
    assert events.get("w1").pending is False
    events.mark_withdrawn("gone")  # nothing to withdraw: no error, no item made
    assert events.get("gone") is None


def test_get_many_reads_the_events_that_exist(events: Any) -> None:
    for n in ("m1", "m2"):
        events.put(
            model.parse_exposure_event({**EVENT, "notificationId": n}), version="v1", expires_at=1
        )
    found = events.get_many(["m2", "missing", "m1", "m2"])
    assert sorted(s.event.notification_id for s in found) == ["m1", "m2"]
    assert all(s.pending for s in found)
    assert events.get_many([]) == []
