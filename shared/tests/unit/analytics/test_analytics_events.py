"""The event schema: only what the catalogue allows can be written, and reading trusts nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from covidtracer.analytics import model
from covidtracer.analytics.model import CATALOGUE, ENVELOPE, EventRejected, make_event

NOW = datetime(2026, 12, 1, 9, 5, 12, 345_000, tzinfo=UTC)
ID = "0123456789abcdef0123456789abcdef"


def build(name: str, counts=None, categories=None, version: str = "v1.2.3") -> model.Event:
    return make_event(
        name, counts or {}, categories or {}, stage="prod", version=version, now=NOW, new_id=ID
    )


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_catalogued_event_builds_with_all_its_fields(name: str) -> None:
    spec = CATALOGUE[name]
    event = build(
        name,
        {key: 3 for key in spec.counts},
        {key: "ios" for key in spec.categories},
    )
    record = json.loads(event.record())
    assert set(record) == ENVELOPE
    assert record["service"] == spec.service
    assert set(record["counts"]) == spec.counts
    assert set(record["categories"]) == set(spec.categories)


def test_a_record_is_one_line_of_json_with_the_documented_fields() -> None:
    record = build("keys_uploaded", {"keys": 14}, {"platform": "ios"}).record()
    assert record.endswith(b"\n") and record.count(b"\n") == 1
    assert json.loads(record) == {
        "schema": 1,
        "id": ID,
        "name": "keys_uploaded",
        "time": "2026-12-01T09:05:12.345Z",
        "service": "enf",
        "stage": "prod",
        "version": "v1.2.3",
        "counts": {"keys": 14},
        "categories": {"platform": "ios"},
    }


@pytest.mark.parametrize(
    ("name", "counts", "categories"),
    [
        ("user_emailed", {}, {}),  # not in the catalogue
        ("keys_uploaded", {"keys": 1, "phone": 64210000000}, {}),  # a count it does not declare
        ("keys_uploaded", {}, {"email": "aroha@example.nz"}),  # a category it does not declare
        ("keys_uploaded", {"keys": -1}, {}),
        ("keys_uploaded", {"keys": True}, {}),
        ("keys_uploaded", {"keys": 1.5}, {}),
        ("keys_uploaded", {"keys": "14"}, {}),
        ("keys_uploaded", {"keys": 10**12}, {}),
        ("account_created", {"count": 1}, {}),
    ],
)
def test_fields_the_catalogue_does_not_allow_are_refused(name, counts, categories) -> None:
    with pytest.raises(EventRejected):
        build(name, counts, categories)


@pytest.mark.parametrize(
    ("key", "value", "kept"),
    [
        ("metric", "DAILY_ACTIVE_TRACE", "DAILY_ACTIVE_TRACE"),
        ("metric", "aroha@example.nz", "other"),
        ("os", "android", "android"),
        ("os", "+64 21 012 3456", "other"),
        ("app_version", "8.0.0", "8.0.0"),
        ("app_version", "8.0.0 (Aroha Smith)", "other"),
        ("app_version", "9429300000000", "other"),
        ("app_version", 8, "other"),
    ],
)
def test_category_values_outside_their_vocabulary_become_other(key, value, kept) -> None:
    event = build("enf_metric_received", categories={key: value})
    assert event.categories[key] == kept


def test_a_release_version_that_is_not_a_tag_is_recorded_as_other() -> None:
    assert build("account_created", version="v1.2.3").version == "v1.2.3"
    assert build("account_created", version="me@example.nz is here").version == "other"


def test_records_read_back_as_the_events_written_even_concatenated_without_newlines() -> None:
    first = build("keys_uploaded", {"keys": 2}, {"platform": "android"})
    second = build("account_created")
    blob = first.record().rstrip(b"\n") + second.record() + b'{"event_type": "_session.start"}'
    values = list(model.json_values(blob))
    assert len(values) == 3
    assert [model.parse_event(v) for v in values] == [first, second, None]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.update(name="user_emailed"),
        lambda r: r.update(service="details"),  # keys_uploaded happens in enf only
        lambda r: r.update(schema=2),
        lambda r: r.update(id="not-an-id"),
        lambda r: r.update(extra="aroha@example.nz"),
        lambda r: r["counts"].update(phone=1),
        lambda r: r.update(time="yesterday"),
        lambda r: r.pop("stage"),
    ],
)
def test_records_not_in_the_schema_are_not_trusted(mutate) -> None:
    record = json.loads(build("keys_uploaded", {"keys": 2}, {"platform": "ios"}).record())
    mutate(record)
    assert model.parse_event(record) is None


def test_a_torn_record_is_skipped_and_the_next_line_still_read() -> None:
    good = build("account_created")
    values = list(model.json_values(b'{"schema": 1, "na\n' + good.record()))
    assert [model.parse_event(v) for v in values] == [good]


def _envelope(*messages: str, message_type: str = "DATA_MESSAGE") -> bytes:
    """A record as a CloudWatch Logs subscription delivers it to Firehose (before gzip)."""
    return json.dumps(
        {
            "messageType": message_type,
            "owner": "123456789012",
            "logGroup": "/aws/lambda/covidtracer-prod-enf",
            "logStream": "2026/12/01/[$LATEST]0123",
            "subscriptionFilters": ["analytics-events"],
            "logEvents": [
                {"id": str(n), "timestamp": 1, "message": m} for n, m in enumerate(messages)
            ],
        }
    ).encode()


def test_records_are_read_out_of_the_envelopes_cloudwatch_logs_delivers_and_as_written() -> None:
    first, second, third = (build("account_created"), build("keys_uploaded", {"keys": 3}),
                            build("sign_in_succeeded"))  # fmt: skip
    blob = (
        _envelope(first.record().decode().rstrip("\n"), second.record().decode())
        + _envelope("CWL CONTROL MESSAGE: Checking health", message_type="CONTROL_MESSAGE")
        + third.record()  # as written, the way the app's own events arrive
        + _envelope("START RequestId: 1 Version: 7", '{"level": "INFO", "message": "request"}')
    )  # fmt: skip
    events = [model.parse_event(v) for v in model.records(blob)]
    assert [e for e in events if e is not None] == [first, second, third]
    assert events.count(None) == 1  # the JSON log line; the START line is no record at all
