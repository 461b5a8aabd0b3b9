"""The contract tier: the app API's answers, its push and its feed, decoded as the app does
(``tracerstack.clients``, written from CLIENTS.md). A change that would break a phone fails
here."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from conftest import Api
from sign_in_flow import SignedIn
from test_exposure_events import FEED_KEY, PATH, event, feed_item, pushes
from test_location_history import heavy_diary, issue_code

from tracerstack import clients
from tracerstack.bootstrap import Bootstrap
from tracerstack.pytest_plugin import Partners

pytestmark = pytest.mark.contract


def test_a_pushed_event_wakes_both_platforms_and_the_feed_decodes(
    api: Api, outbox: Partners, ncts_key: dict[str, str], aws_stack: Bootstrap
) -> None:
    body = event("contract1")
    assert api.send("POST", PATH, body, ncts_key)[0] == 201
    (message,) = pushes(outbox)
    assert clients.push(message) == [feed_item(body)]
    stored = aws_stack.client("s3").get_object(Bucket=aws_stack.outputs["FeedBucket"], Key=FEED_KEY)
    headers = {"Content-Encoding": stored["ContentEncoding"]}
    items = clients.app_feed(stored["Body"].read(), headers)
    assert feed_item(body) in items


def test_the_onboarding_patch_of_apps_before_7_is_answered_with_the_record(
    api: Api, sign_in: Callable[[], SignedIn]
) -> None:
    me = sign_in()
    onboarding = {"firstName": "Kiri", "lastName": "Ngata", "phone": "+64 210 123 456"}
    status, _, record = api.send("PATCH", "/user/details", onboarding, me.headers)
    assert status == 200  # the saga retries 3 times on anything else, then drops the details
    assert (record["firstName"], record["phone"]) == ("Kiri", "+64210123456")


def test_a_3000_entry_diary_is_accepted_whole(api: Api, outbox: Partners) -> None:
    """Apps 3.0.0-6.0.0 send the whole 60-day diary in one request (CLIENTS.md): 15-30 scans
    a day is thousands of entries; a refusal means the diary cannot be shared at all. It
    reaches NCTS without loss (the 10,000-entry diary: the unit tier's test_diary_service)."""
    code = issue_code(outbox)
    diary = heavy_diary(3_000)
    status, _, problem = api.send(
        "POST", "/v2/user/location-history", {"consentCode": code, "locations": diary}
    )
    assert status == 204, problem
    [sent] = outbox.outbox()
    assert sent["to"] == "location-history"
    assert json.loads(sent["body"]) == {"consentCode": code, "locations": diary}
