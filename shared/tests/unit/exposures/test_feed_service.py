"""The feed's write paths with in-memory twins: an inbound change edits the stored feed, the
job rebuilds it from the table, and neither overwrites a concurrent writer's change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from covidtracer.errors import Unavailable
from covidtracer.exposures import model, service
from covidtracer.ratelimit.repository import MemoryCounters
from tracerstack.details_fakes import (
    MemoryExposureEvents,
    MemoryFeedStore,
    RecordingFcm,
    exposure_dependencies,
)

NOW = datetime(2021, 10, 5, 12, 0, tzinfo=UTC)
KEY = "current-exposure-events.json"
JOB = service.FeedJob()


class RacingFeed(MemoryFeedStore):
    """A feed store where another NCTS request stores an event and publishes it right after
    each of the first ``races`` reads (or version checks) of this writer."""

    def __init__(self, races: int, events: MemoryExposureEvents) -> None:
        super().__init__()
        self.races, self.events, self.raced = races, events, 0

    def _race(self, key: str) -> None:
        if self.races > 0:
            self.races -= 1
            self.raced += 1
            other = model.parse_exposure_event(_body(f"other{self.raced}", days_ago=3))
            self.events.put(other, version="v1", expires_at=0)
            found = MemoryFeedStore.read(self, key)
            items = model.feed_items(found[0]) if found else []
            document = model.feed_document(model.updated_items(items, NOW, 14, upsert=other))
            MemoryFeedStore.write(self, key, document, 1, replaces=found[1] if found else None)

    def read(self, key: str) -> tuple[bytes, str] | None:
        found = super().read(key)
        self._race(key)
        return found

    def version(self, key: str) -> str | None:
        found = super().version(key)
        self._race(key)
        return found


def _with(
    *, events: MemoryExposureEvents, feed: MemoryFeedStore, counters: MemoryCounters
) -> service.Dependencies:
    """The use cases' dependencies over in-memory twins (a fresh FCM that records pushes)."""
    return exposure_dependencies(events=events, feed=feed, counters=counters)


def _deps(races: int | None = None) -> service.Dependencies:
    events = MemoryExposureEvents()
    return _with(
        events=events,
        feed=MemoryFeedStore() if races is None else RacingFeed(races, events),
        counters=MemoryCounters(),
    )


def _body(notification_id: str, days_ago: float = 1, **overrides: Any) -> dict[str, Any]:
    start = NOW - timedelta(days=days_ago)
    return {
        "eventId": "a0l4a0000004xhcAAA",
        "notificationId": notification_id,
        "gln": "1234567890001",
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "systemNotificationBody": "Body",
        "appBannerTitle": "Title",
        "appBannerBody": "Banner",
        **overrides,
    }


def _published(deps: service.Dependencies) -> list[dict[str, str]]:
    found = deps.feed.read(KEY)
    assert found is not None
    return model.feed_items(found[0])


def _rebuilt(deps: service.Dependencies) -> list[dict[str, str]]:
    return model.active_items((s.event for s in deps.events.scan()), NOW, 14)


def test_every_inbound_change_leaves_the_feed_equal_to_a_rebuild_from_the_table() -> None:
    deps = _deps()
    changes = [
        ("put", _body("a", days_ago=2)),
        ("put", _body("b", days_ago=1)),
        ("put", _body("c", days_ago=20)),  # stored, never active
        ("put", _body("a", days_ago=2, appBannerTitle="Changed")),
        ("put", _body("a", days_ago=2, appBannerTitle="Changed")),  # a repeat
        ("delete", "b"),
        ("delete", "b"),
        ("put", _body("d", days_ago=3)),
    ]
    for kind, change in changes:
        if kind == "put":
            service.receive_exposure_event(deps, change, NOW)
        else:
            service.withdraw_exposure_event(deps, change, NOW)
        assert _published(deps) == _rebuilt(deps)
    assert [i["notificationId"] for i in _published(deps)] == ["d", "a"]
    assert _published(deps)[1]["appBannerTitle"] == "Changed"


def test_an_inbound_change_that_loses_a_race_reads_again_and_keeps_both_changes() -> None:
    deps = _deps(races=0)
    service.receive_exposure_event(deps, _body("a"), NOW)
    assert isinstance(deps.feed, RacingFeed)
    deps.feed.races = 2
    service.receive_exposure_event(deps, _body("b"), NOW)
    assert deps.feed.raced == 2  # lost twice, written on the third attempt
    assert [i["notificationId"] for i in _published(deps)] == ["other1", "other2", "a", "b"]
    assert _published(deps) == _rebuilt(deps)


def test_the_rebuild_does_not_overwrite_a_change_published_during_its_scan() -> None:
    deps = _deps(races=1)
    deps.events.put(model.parse_exposure_event(_body("a")), version="v1", expires_at=0)
    service.publish_exposure_events_feed(deps, JOB, NOW)
    assert [i["notificationId"] for i in _published(deps)] == ["other1", "a"]


def test_writers_that_keep_losing_give_up_with_unavailable() -> None:
    deps = _deps(races=100)
    with pytest.raises(Unavailable):
        service.publish_exposure_events_feed(deps, JOB, NOW)
    with pytest.raises(Unavailable):
        service.receive_exposure_event(deps, _body("a"), NOW)
    assert deps.events.get("a") is not None  # stored: NCTS's retry publishes it


def test_an_unreadable_stored_feed_is_rebuilt_from_the_table() -> None:
    deps = _deps()
    deps.events.put(model.parse_exposure_event(_body("a")), version="v1", expires_at=0)
    deps.feed.write(KEY, b"not a feed", 1, replaces=None)
    service.withdraw_exposure_event(deps, "unknown", NOW)
    assert [i["notificationId"] for i in _published(deps)] == ["a"]


def test_a_change_with_no_feed_yet_builds_it_from_the_table() -> None:
    deps = _deps()
    old = model.parse_exposure_event(_body("old", days_ago=2))
    deps.events.put(old, version="v1", expires_at=0)
    service.receive_exposure_event(deps, _body("new"), NOW)
    assert [i["notificationId"] for i in _published(deps)] == ["old", "new"]


class NoScanEvents(MemoryExposureEvents):
    """The job must work from the pending events and the stored feed alone."""

    def scan(self) -> Any:
        raise AssertionError("the feed job scanned the table")


def _job_deps() -> service.Dependencies:
    deps = _deps()
    deps.feed.write(KEY, model.feed_document([]), 1, replaces=None)  # the stage's feed exists
    return _with(events=NoScanEvents(), feed=deps.feed, counters=deps.counters)


def test_the_job_drops_expired_items_and_adds_pending_events_without_a_scan() -> None:
    deps = _job_deps()
    for name, days_ago in (("kept", 3), ("expiring", 13.95)):
        service.receive_exposure_event(deps, _body(name, days_ago=days_ago), NOW)
    # Stored, but its feed write failed and NCTS never retried: still pending.
    lost = model.parse_exposure_event(_body("lost", days_ago=1))
    deps.events.put(lost, version="v9", expires_at=0)
    later = NOW + timedelta(hours=3)

    summary = service.publish_exposure_events_feed(deps, JOB, later)

    assert [i["notificationId"] for i in _published(deps)] == ["kept", "lost"]
    assert summary == {"items": 2, "expired": 1, "pushesRetried": 1, "pushesPending": 0}
    assert [s.event.notification_id for s in deps.events.pending()] == []
    assert isinstance(deps.fcm, RecordingFcm) and len(deps.fcm.sent) == 3  # kept, expiring, lost


def test_a_job_with_nothing_changed_or_expired_writes_nothing() -> None:
    deps = _job_deps()
    service.receive_exposure_event(deps, _body("a"), NOW)
    version = deps.feed.version(KEY)
    summary = service.publish_exposure_events_feed(deps, JOB, NOW)
    assert deps.feed.version(KEY) == version
    assert summary == {"items": 1, "expired": 0, "pushesRetried": 0, "pushesPending": 0}


def test_a_pending_event_withdrawn_before_the_job_reads_it_is_not_published_again() -> None:
    class LaggingIndex(NoScanEvents):
        """A sparse index still listing an event the table has lost (GSIs lag)."""

        def pending(self) -> Any:
            yield from super().pending()
            yield model.StoredEvent(
                model.parse_exposure_event(_body("withdrawn")), True, "v1", True
            )

    deps = _job_deps()
    deps = _with(events=LaggingIndex(), feed=deps.feed, counters=deps.counters)
    service.receive_exposure_event(deps, _body("a"), NOW)
    service.publish_exposure_events_feed(deps, JOB, NOW)
    assert [i["notificationId"] for i in _published(deps)] == ["a"]


def test_a_withdrawal_whose_feed_write_fails_keeps_the_event_for_the_retry() -> None:
    class DownFeed(MemoryFeedStore):
        def write(self, key: str, body: bytes, max_age: int, *, replaces: str | None) -> None:
            raise Unavailable("s3:feed")

    deps = _deps()
    service.receive_exposure_event(deps, _body("a"), NOW)
    down = DownFeed()
    down.objects, down._versions = deps.feed.objects, deps.feed._versions  # type: ignore[attr-defined]
    failing = _with(events=deps.events, feed=down, counters=deps.counters)
    with pytest.raises(Unavailable):
        service.withdraw_exposure_event(failing, "a", NOW)
    assert deps.events.get("a") is not None  # NCTS's retry withdraws it
    service.withdraw_exposure_event(deps, "a", NOW)
    assert deps.events.get("a") is None
    assert "a" not in [i["notificationId"] for i in _published(deps)]


def test_withdrawing_with_no_feed_yet_rebuilds_it_without_the_event() -> None:
    deps = _deps()
    for name in ("a", "b"):
        deps.events.put(model.parse_exposure_event(_body(name)), version="v1", expires_at=0)
    service.withdraw_exposure_event(deps, "a", NOW)
    assert [i["notificationId"] for i in _published(deps)] == ["b"]
    assert deps.events.get("a") is None


# ---------------------------------------------------------------------------- issue 20, item 5


def test_a_writer_is_done_when_a_concurrent_writer_published_its_change_for_it() -> None:
    """Request A stored its event and is about to write the feed when request B's write
    lands: B merged A's pending event, so A finds it shown and writes nothing."""
    deps = _deps()
    service.receive_exposure_event(deps, _body("first"), NOW)
    in_flight = model.parse_exposure_event(_body("a"))
    deps.events.put(in_flight, version="va", expires_at=0)  # A: stored, feed not yet written
    service.receive_exposure_event(deps, _body("b"), NOW)  # B merges A's change
    assert sorted(i["notificationId"] for i in _published(deps)) == ["a", "b", "first"]
    version = deps.feed.version(KEY)
    service._update_feed(deps, NOW, upsert=in_flight)  # A's own feed write
    assert deps.feed.version(KEY) == version  # nothing left to write
    assert _published(deps) == _rebuilt(deps)


def test_a_writer_that_reads_again_never_publishes_an_event_being_withdrawn() -> None:
    """An event's update stays pending (its push failed); NCTS withdraws it while the feed
    job writes: the withdrawal's feed write lands between the job's read and its write, and
    the event is still in the table when the job reads again. It must not come back into
    the public feed (the job, like every writer, folds in the pending events)."""

    class Withdrawing(MemoryFeedStore):
        """Runs the withdrawal (all but its delete) just before the next write."""

        withdraw: Any = None

        def write(self, key: str, body: bytes, max_age: int, *, replaces: str | None) -> None:
            withdraw, self.withdraw = self.withdraw, None
            if withdraw is not None:
                withdraw()
            super().write(key, body, max_age, replaces=replaces)

    class DeferredDelete(MemoryExposureEvents):
        def __init__(self) -> None:
            super().__init__()
            self.deferred: list[str] = []

        def delete(self, notification_id: str) -> bool:
            self.deferred.append(notification_id)
            return True

    events, feed = DeferredDelete(), Withdrawing()
    deps = _with(events=events, feed=feed, counters=MemoryCounters())
    service.receive_exposure_event(deps, _body("x"), NOW)
    update = model.parse_exposure_event(_body("x", appBannerTitle="Updated"))
    events.put(update, version="v2", expires_at=0)  # stored; its feed write failed
    feed.withdraw = lambda: service.withdraw_exposure_event(deps, "x", NOW)
    service.publish_exposure_events_feed(deps, JOB, NOW)
    assert events.deferred == ["x"]  # the withdrawal ran, up to its delete
    assert _published(deps) == []
    MemoryExposureEvents.delete(events, "x")
    assert _published(deps) == _rebuilt(deps)
