"""POST /v2/user/location-history: validation, the 60-day cut, forwarding to NCTS, outages."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import Api

from tracerstack.details_fakes import diary_entry, iso_millis
from tracerstack.pytest_plugin import Partners

PATH = "/v2/user/location-history"


def _entry(**overrides: Any) -> dict[str, Any]:
    return diary_entry(datetime.now(UTC), **overrides)


def issue_code(partners: Partners) -> str:
    request = urllib.request.Request(f"{partners.url}/consent-codes", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["consentCode"])


# Every field rule is a table in the unit tier (shared/tests/unit/diary); here the error's
# shape over HTTP, for a broken field and for a body that is not a JSON object.


def test_a_broken_rule_is_a_400_naming_the_field(api: Api, outbox: Partners) -> None:
    for body, key in (
        ({"consentCode": "A1B2C3", "locations": [_entry(entryType=2)]}, "Locations[0].EntryType"),
        ("[]", "Body"),
        ("{not json", "Body"),
    ):
        status, headers, problem = api.send("POST", PATH, body)
        assert status == 400, problem
        assert problem["type"] == "urn:errors:validation"
        assert problem["title"] == "One or more validation errors occurred."
        assert key in problem["errors"], problem["errors"]
        assert headers["Cache-Control"] == "no-store"
    assert outbox.outbox() == []


def test_entries_older_than_60_days_never_reach_ncts(api: Api, outbox: Partners) -> None:
    code = issue_code(outbox)
    now = datetime.now(UTC)
    recent = _entry(time=iso_millis(now - timedelta(days=59, hours=23)), locationName="Recent")
    old = _entry(time=iso_millis(now - timedelta(days=60, minutes=5)), locationName="Old")
    status, _, _ = api.send("POST", PATH, {"consentCode": code, "locations": [old, recent]})
    assert status == 204
    (sent,) = outbox.outbox()
    assert (sent["channel"], sent["to"]) == ("ncts", "location-history")
    forwarded = json.loads(sent["body"])
    assert forwarded == {"consentCode": code, "locations": [recent]}
    assert "Old" not in sent["body"]


def test_a_code_ncts_did_not_issue_is_a_validation_error_on_consent_code(
    api: Api, outbox: Partners
) -> None:
    status, _, problem = api.send("POST", PATH, {"consentCode": "ZZZZZZ", "locations": [_entry()]})
    assert status == 400
    assert problem == {
        "type": "urn:errors:validation",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": {"ConsentCode": ["The consent code is invalid."]},
    }


def test_ncts_down_is_a_503_and_nothing_is_sent(api: Api, outbox: Partners) -> None:
    code = issue_code(outbox)
    outbox.outage("ncts", 503)
    status, headers, problem = api.send(
        "POST", PATH, {"consentCode": code, "locations": [_entry()]}
    )
    assert status == 503
    assert problem["type"] == "urn:errors:unavailable"
    assert headers["Retry-After"]
    assert code not in json.dumps(problem)
    assert outbox.outbox() == []


def heavy_diary(count: int) -> list[dict[str, Any]]:
    """A heavy user's 60 days: ``count`` scans spread over them, each place named and noted.
    No time falls on a whole second (.000 is forwarded without its milliseconds, so the
    comparison of what NCTS received would fail about one run in 200 at 3,000 entries)."""
    now = datetime.now(UTC).replace(microsecond=250_000)
    step = timedelta(days=59) / count
    return [
        _entry(
            gln=f"94293{n:08d}",
            locationName=f"Place number {n} on Lambton Quay",
            note="with the team" if n % 3 else "",
            entryType=n % 2,
            time=iso_millis(now - timedelta(minutes=5) - step * n),
        )
        for n in range(count)
    ]


def test_a_diary_is_bounded_by_size_as_lambda_bounds_a_request(api: Api, outbox: Partners) -> None:
    # ~6.3 MB of entries: over Lambda's 6 MB, refused whole; nothing reaches NCTS.
    code = issue_code(outbox)
    big = [_entry(locationName="L" * 255, note="n" * 255) for _ in range(10_500)]
    status, _, problem = api.send("POST", PATH, {"consentCode": code, "locations": big})
    assert status == 413
    assert problem["type"] == "urn:errors:payload-too-large"
    assert outbox.outbox() == []
