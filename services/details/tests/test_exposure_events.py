"""NCTS-facing exposure events: the API key, storage, the push, and the public feed."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from conftest import (
    Api,
    stack_of_its_own,
)

from tracerstack.bootstrap import Bootstrap
from tracerstack.details_fakes import exposure_event
from tracerstack.jobs import JOBS, scheduled_event
from tracerstack.pytest_plugin import Partners

PATH = "/ncts/exposure-events"
FEED_KEY = "current-exposure-events.json"
GLN_HASH = "apPBf9OWIovY1HkHAdAQrV1AF8gNmWbuTJu8UFWYfJ4VPcGGdDiNOywVgy3ZhOaU"

# A stack of its own: the feed must hold this module's events only.
aws_stack = stack_of_its_own()


def event(
    notification_id: str = "a1k4a000000DaLsAAK", days_ago: float = 1, **overrides: Any
) -> dict[str, Any]:
    return exposure_event(notification_id, now=datetime.now(UTC), days_ago=days_ago, **overrides)


def feed_item(body: dict[str, Any]) -> dict[str, str]:
    return {
        "eventId": body["eventId"],
        "notificationId": body["notificationId"],
        "glnHash": GLN_HASH,
        "start": body["start"],
        "end": body["end"],
        "systemNotificationBody": body["systemNotificationBody"],
        "appBannerTitle": body["appBannerTitle"],
        "appBannerBody": body["appBannerBody"],
        "appBannerLinkLabel": body["appBannerLinkLabel"],
        "appBannerLinkUrl": body["appBannerLinkUrl"],
        "appBannerRequestCallbackEnabled": "true"
        if body["appBannerRequestCallbackEnabled"]
        else "false",
    }


def read_feed(aws_stack: Bootstrap) -> tuple[dict[str, Any], dict[str, Any]]:
    obj = aws_stack.client("s3").get_object(Bucket=aws_stack.outputs["FeedBucket"], Key=FEED_KEY)
    return json.loads(gzip.decompress(obj["Body"].read())), obj


def pushes(outbox: Partners) -> list[dict[str, Any]]:
    return [json.loads(item["body"]) for item in outbox.outbox() if item["channel"] == "push"]


def test_a_missing_or_wrong_api_key_is_401(api: Api, outbox: Partners) -> None:
    for headers in ({}, {"x-api-key": "wrong"}, {"x-api-key": ""}):
        for method, path in (("POST", PATH), ("DELETE", f"{PATH}/abc")):
            body = event() if method == "POST" else None
            status, _, problem = api.send(method, path, body, headers)
            assert status == 401, (method, headers)
            assert problem["type"] == "urn:errors:unauthorized"
    assert outbox.outbox() == []


def test_an_event_is_stored_pushed_and_published_with_every_value_a_string(
    api: Api, outbox: Partners, ncts_key: dict[str, str], aws_stack: Bootstrap
) -> None:
    body = event()
    status, _, item = api.send("POST", PATH, body, ncts_key)
    assert status == 201
    assert item == feed_item(body)

    feed, obj = read_feed(aws_stack)
    assert feed == {"items": [feed_item(body)]}
    assert all(isinstance(v, str) for i in feed["items"] for v in i.values())
    assert obj["ContentEncoding"] == "gzip"
    assert obj["ContentType"] == "application/json"
    assert "max-age=300" in obj["CacheControl"]

    (message,) = pushes(outbox)
    assert message == {
        "message": {
            "topic": "all",
            "data": {
                "type": "exposure-event-notifications",
                "payload": json.dumps([feed_item(body)], separators=(",", ":")),
            },
            # CLIENTS.md: without these an iOS app is not woken in the background and
            # Android defers the message.
            "apns": {
                "headers": {"apns-push-type": "background", "apns-priority": "5"},
                "payload": {"aps": {"content-available": 1}},
            },
            "android": {"priority": "high"},
        }
    }
    assert json.loads(message["message"]["data"]["payload"]) == [feed_item(body)]


def test_a_repost_of_the_same_event_is_idempotent(
    api: Api, outbox: Partners, ncts_key: dict[str, str], aws_stack: Bootstrap
) -> None:
    body = event("repost1")
    assert api.send("POST", PATH, body, ncts_key)[0] == 201
    assert api.send("POST", PATH, body, ncts_key)[0] == 200
    feed, _ = read_feed(aws_stack)
    assert [i["notificationId"] for i in feed["items"]].count("repost1") == 1
    assert len(pushes(outbox)) == 1


def test_a_changed_repost_replaces_the_event_and_pushes_again(
    api: Api, outbox: Partners, ncts_key: dict[str, str], aws_stack: Bootstrap
) -> None:
    assert api.send("POST", PATH, event("change1"), ncts_key)[0] == 201
    changed = event("change1", appBannerTitle="Updated", appBannerRequestCallbackEnabled=False)
    assert api.send("POST", PATH, changed, ncts_key)[0] == 200
    feed, _ = read_feed(aws_stack)
    (item,) = [i for i in feed["items"] if i["notificationId"] == "change1"]
    assert (item["appBannerTitle"], item["appBannerRequestCallbackEnabled"]) == ("Updated", "false")
    assert len(pushes(outbox)) == 2


def test_withdrawal_removes_the_event_from_the_feed(
    api: Api, outbox: Partners, ncts_key: dict[str, str], aws_stack: Bootstrap
) -> None:
    assert api.send("POST", PATH, event("withdraw1"), ncts_key)[0] == 201
    assert api.send("DELETE", f"{PATH}/withdraw1", None, ncts_key)[0] == 204
    feed, _ = read_feed(aws_stack)
    assert "withdraw1" not in [i["notificationId"] for i in feed["items"]]
    # Withdrawing again is fine: NCTS may retry.
    assert api.send("DELETE", f"{PATH}/withdraw1", None, ncts_key)[0] == 204


# The field rules of an event, and which events are published and pushed, are tables in
# the unit tier (shared/tests/unit/exposures); here the error's shape over HTTP.


def test_a_malformed_event_is_a_400_naming_the_field(
    api: Api, outbox: Partners, ncts_key: dict[str, str]
) -> None:
    status, _, problem = api.send("POST", PATH, event("bad1", gln="123"), ncts_key)
    assert status == 400
    assert problem["type"] == "urn:errors:validation"
    assert "Gln" in problem["errors"], problem
    assert pushes(outbox) == []


def test_a_failed_push_is_kept_and_retried_by_the_feed_job(
    api: Api, outbox: Partners, ncts_key: dict[str, str], aws_stack: Bootstrap
) -> None:
    from app import publish_exposure_events_feed

    outbox.outage("fcm", 503)
    assert api.send("POST", PATH, event("pending1"), ncts_key)[0] == 201
    assert "pending1" in [i["notificationId"] for i in read_feed(aws_stack)[0]["items"]]
    item = aws_stack.client("dynamodb").get_item(
        TableName=aws_stack.outputs["ExposureEventsTable"],
        Key={"notificationId": {"S": "pending1"}},
    )["Item"]
    assert item["pushPending"] == {"BOOL": True}
    assert "gln" not in item and item["glnHash"] == {"S": GLN_HASH}

    context = SimpleNamespace(aws_request_id="r1", function_name="publish_exposure_events_feed")
    scheduled = scheduled_event(JOBS["events-feed"])
    still_down = publish_exposure_events_feed(scheduled, context)
    assert still_down["pushesRetried"] == 0 and still_down["pushesPending"] >= 1

    outbox.server.state.outages.clear()
    summary = publish_exposure_events_feed(scheduled, context)
    assert summary["pushesPending"] == 0 and summary["pushesRetried"] >= 1
    retried = [
        json.loads(p["message"]["data"]["payload"])[0]["notificationId"] for p in pushes(outbox)
    ]
    assert "pending1" in retried
    again = publish_exposure_events_feed(scheduled, context)
    assert again["pushesRetried"] == 0
