"""Pure rules of exposure events: the GLN hash vector, the feed and push shapes, callbacks."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from covidtracer.errors import TooManyRequests, ValidationError
from covidtracer.exposures import model
from covidtracer.ratelimit.model import Limit
from covidtracer.ratelimit.repository import MemoryCounters
from covidtracer.ratelimit.service import enforce

NOW = datetime(2021, 10, 5, 12, 0, tzinfo=UTC)


def test_the_gln_hash_matches_the_published_vector() -> None:
    assert (
        model.gln_hash("1234567890001")
        == "apPBf9OWIovY1HkHAdAQrV1AF8gNmWbuTJu8UFWYfJ4VPcGGdDiNOywVgy3ZhOaU"
    )


EVENT = {
    "eventId": "a0l4a0000004xhcAAA",
    "notificationId": "a1k4a000000DaLsAAK",
    "gln": "1234567890001",
    "start": "2021-10-04T21:00:00Z",
    "end": "2021-10-04T22:00:00.500Z",
    "systemNotificationBody": "Body",
    "appBannerTitle": "Title",
    "appBannerBody": "Banner",
}


def test_a_feed_item_has_every_value_as_a_string_in_the_documented_order() -> None:
    item = model.parse_exposure_event(EVENT).feed_item()
    assert list(item) == [
        "eventId", "notificationId", "glnHash", "start", "end", "systemNotificationBody",
        "appBannerTitle", "appBannerBody", "appBannerLinkLabel", "appBannerLinkUrl",
        "appBannerRequestCallbackEnabled",
    ]  # fmt: skip
    assert item["end"] == "2021-10-04T22:00:00.500Z"
    assert item["appBannerRequestCallbackEnabled"] == "false"
    assert all(isinstance(v, str) for v in item.values())


def test_the_feed_keeps_events_that_ended_up_to_14_days_ago_sorted_by_start() -> None:
    events = [
        model.parse_exposure_event({**EVENT, "notificationId": n, "start": s, "end": e})
        for n, s, e in (
            ("late", "2021-10-04T00:00:00Z", "2021-10-04T01:00:00Z"),
            ("gone", "2021-09-01T00:00:00Z", "2021-09-21T11:59:59Z"),
            ("edge", "2021-09-20T00:00:00Z", "2021-09-21T12:00:00Z"),
        )
    ]
    items = model.active_items(events, NOW, 14)
    assert [i["notificationId"] for i in items] == ["edge", "late"]
    document = json.loads(gzip.decompress(model.feed_document(items)))
    assert document == {"items": items}
    assert model.feed_document(items) == model.feed_document(items)


def _events(*rows: tuple[str, str, str]) -> list[model.ExposureEvent]:
    return [
        model.parse_exposure_event({**EVENT, "notificationId": n, "start": s, "end": e})
        for n, s, e in rows
    ]


FEED_ROWS = (
    ("late", "2021-10-04T00:00:00Z", "2021-10-04T01:00:00Z"),
    ("gone", "2021-09-01T00:00:00Z", "2021-09-21T11:59:59Z"),
    ("edge", "2021-09-20T00:00:00Z", "2021-09-21T12:00:00Z"),
    # Milliseconds sort before whole seconds as text ('.' < 'Z'), but after them in time.
    ("ms", "2021-10-04T00:00:00.250Z", "2021-10-04T02:00:00Z"),
    ("same", "2021-10-04T00:00:00Z", "2021-10-04T03:00:00Z"),
)


@pytest.mark.parametrize(
    ("stored", "upsert", "remove"),
    [
        (["late", "gone", "edge"], "ms", None),  # a new event, and "gone" aged out meanwhile
        (["late", "ms", "edge"], "same", None),  # same start: by notification id
        (["late", "ms", "same"], "late", None),  # a changed event replaces its item
        (["late", "ms", "same"], "gone", None),  # an inactive event is not published
        (["late", "ms", "edge"], None, "ms"),  # a withdrawal
        (["late", "ms"], None, "unknown"),  # withdrawing an unknown event changes nothing
    ],
)
def test_an_inbound_change_to_the_stored_feed_equals_a_rebuild_from_the_table(
    stored: list[str], upsert: str | None, remove: str | None
) -> None:
    by_id = {e.notification_id: e for e in _events(*FEED_ROWS)}
    # The stored feed was published a while ago: "gone" was still active then.
    published = model.active_items((by_id[n] for n in stored), NOW - timedelta(days=1), 14)
    late = {"notificationId": "late", "start": FEED_ROWS[0][1], "end": FEED_ROWS[0][2]}
    changed = model.parse_exposure_event({**EVENT, **late, "appBannerTitle": "New"})
    if upsert == "late":
        by_id["late"] = changed
    table = {n: by_id[n] for n in stored} | ({upsert: by_id[upsert]} if upsert else {})
    table.pop(remove or "", None)
    updated = model.updated_items(
        model.feed_items(model.feed_document(published)), NOW, 14,
        upsert=by_id[upsert] if upsert else None, remove=remove,
    )  # fmt: skip
    assert updated == model.active_items(table.values(), NOW, 14)
    assert "gone" not in [i["notificationId"] for i in updated]


@pytest.mark.parametrize(
    "document",
    [
        b"not gzip",
        gzip.compress(b"[1, 2]"),
        gzip.compress(b'{"items": [{"start": 1}]}'),
        gzip.compress(b'{"items": "x"}'),
    ],
)
def test_a_stored_feed_that_is_not_ours_is_a_value_error(document: bytes) -> None:
    with pytest.raises(ValueError, match="not a feed document"):
        model.feed_items(document)


def test_a_stored_feed_item_without_valid_times_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="without valid times"):
        model.updated_items([{"notificationId": "x", "start": "soon", "end": ""}], NOW, 14)


def test_an_event_too_large_for_one_push_is_refused() -> None:
    big = {**EVENT, "appBannerBody": "ā" * 1000, "systemNotificationBody": "ō" * 500}
    big.update(appBannerTitle="ū" * 100, appBannerLinkLabel="ē" * 100)
    big["appBannerLinkUrl"] = "https://x.nz/" + "a" * 480
    with pytest.raises(ValidationError) as caught:
        model.parse_exposure_event(big)
    assert "Body" in caught.value.errors


def test_a_callback_proves_the_event_only_with_its_id_and_gln() -> None:
    event = model.parse_exposure_event(EVENT)
    assert event.matches("a0l4a0000004xhcAAA", "1234567890001")
    assert not event.matches("a0l4a0000004xhcAAA", "1234567890002")
    assert not event.matches("other", "1234567890001")


def test_a_rate_limit_counts_each_subject_in_its_own_window() -> None:
    counters = MemoryCounters()
    limit = Limit("callback-phone", 2, 3600)
    enforce(counters, [(limit, "+6421")], NOW)
    enforce(counters, [(limit, "+6421")], NOW)
    with pytest.raises(TooManyRequests) as caught:
        enforce(counters, [(limit, "+6421")], NOW + timedelta(minutes=10))
    assert caught.value.headers() == {"Retry-After": str(3600 - 600)}
    enforce(counters, [(limit, "+6422")], NOW)  # another phone
    enforce(counters, [(limit, "+6421")], NOW + timedelta(hours=1))  # the next window
    assert all("+6421" not in bucket for bucket in counters.counts)
