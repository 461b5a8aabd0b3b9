"""Pure rules of the export: keys, windows, whole-message selection, lines, queue schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from covidtracer.nctsexport import messages, model, stream
from covidtracer.nctsexport.model import Pending
from covidtracer.nctsexport.stream import MalformedStreamRecord, StreamRecord, records
from covidtracer.personaldetails import model as contract
from covidtracer.personaldetails.model import UserChange

AT = datetime(2021, 10, 4, 21, 5, 12, 345000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "attempt", "key"),
    [
        (datetime(2021, 10, 4, 21, 7, 59, tzinfo=UTC), 0,
         "personal-details/2021/10/04/personal-details-20211004T2105Z.jsonl"),
        (datetime(2021, 10, 4, 21, 5, 0, tzinfo=UTC), 1,
         "personal-details/2021/10/04/personal-details-20211004T2105Z-1.jsonl"),
        (datetime(2021, 1, 2, 0, 4, 59, tzinfo=UTC), 12,
         "personal-details/2021/01/02/personal-details-20210102T0000Z-12.jsonl"),
        (datetime(2021, 10, 5, 10, 59, tzinfo=UTC).astimezone(
            __import__("zoneinfo").ZoneInfo("Pacific/Auckland")), 0,
         "personal-details/2021/10/05/personal-details-20211005T1055Z.jsonl"),
    ],
)  # fmt: skip
def test_export_keys_name_the_utc_five_minute_window(now: datetime, attempt: int, key: str) -> None:
    assert model.export_key(model.window_start(now), attempt) == key


def test_whole_messages_are_taken_until_the_next_would_pass_the_limit() -> None:
    sets = [
        frozenset({"a", "b"}),
        frozenset({"b", "c"}),
        frozenset({"d", "e", "f"}),
        frozenset({"g"}),
    ]
    taken, ids = model.take_whole_messages(sets, set(), limit=4)
    assert taken == [0, 1, 3]  # the 3-id message would make 6; a later small one still fits
    assert ids == {"a", "b", "c", "g"}


def test_latest_change_per_user_keeps_a_removal_only_if_it_is_last() -> None:
    later = AT + timedelta(seconds=1)
    changes = [
        UserChange("a", AT, removed=True),
        UserChange("a", later),
        UserChange("b", AT),
        UserChange("b", later, removed=True),
    ]
    assert model.latest_per_user(changes) == [UserChange("a", later), UserChange("b", later, True)]


def test_pending_keeps_the_newest_removal_time_for_the_tombstone() -> None:
    later = AT + timedelta(minutes=1)
    pending = model.merge_pending(
        [UserChange("a", later), UserChange("a", AT, removed=True), UserChange("b", AT)]
    )
    assert pending["a"] == Pending("a", later, AT)
    assert pending["a"].tombstone_time == AT
    assert pending["b"].tombstone_time == AT  # REMOVE still queued: newest change seen


def test_lines_are_sorted_and_missing_items_become_tombstones() -> None:
    pending = {"b": Pending("b", AT, None), "a": Pending("a", AT, AT)}
    lines = model.export_lines(pending, {"b": {"userId": "b"}})
    assert [line["userId"] for line in lines] == ["a", "b"]
    assert lines[0] == {"userId": "a", "updatedAt": "2021-10-04T21:05:12.345Z", "deleted": True}
    assert model.encode_jsonl(lines[:1]) == (
        b'{"userId":"a","updatedAt":"2021-10-04T21:05:12.345Z","deleted":true}\n'
    )


def test_messages_round_trip_ids_times_and_removals() -> None:
    changes = [UserChange("a", AT), UserChange("b", AT, removed=True)]
    body = messages.encode(changes)
    assert json.loads(body)["version"] == 2
    assert messages.decode(body) == changes


def _line(user_id: str, **fields: object) -> dict[str, object]:
    return contract.record_line(
        {"userId": user_id, "email": "e@x.nz", "firstName": "F", "lastName": "L",
         "phone": "+64210000000", "updatedAt": "2021-10-04T21:05:12.345Z", **fields}
    )  # fmt: skip


def test_version_2_messages_carry_the_stream_order_and_the_export_line() -> None:
    changes = [
        UserChange("a", AT, sequence="100", record=_line("a", ethnicity={"selected": ["x"]})),
        UserChange("b", AT, removed=True, sequence="101"),
    ]
    assert messages.decode(messages.encode(changes)) == changes
    version_1 = messages.encode([UserChange("a", AT)]).replace('"version":2', '"version":1')
    assert messages.decode(version_1) == [UserChange("a", AT)]  # still read: by id only


def test_bodies_also_stay_under_the_sqs_body_size() -> None:
    big = _line("a", middleName="M" * 100, gender="g" * 200)
    changes = [UserChange(f"{n:036d}", AT, sequence=str(n), record={**big, "userId": f"{n:036d}"})
               for n in range(1000)]  # fmt: skip
    bodies = messages.bodies(changes)
    assert all(len(b.encode()) <= messages.MAX_BODY_BYTES for b in bodies)
    assert [c for b in bodies for c in messages.decode(b)] == changes
    assert max(len(messages.decode(b)) for b in bodies) < 500


@pytest.mark.parametrize(
    "record",
    [
        {"userId": "a"},  # not every field
        {**_line("b")},  # another user's
        {**_line("a"), "deleted": True},
        {**_line("a"), "phone": 64210000000},
        {**_line("a"), "ethnicity": {"selected": "x", "other": None}},
        {**_line("a"), "extra": "field"},
    ],
)
def test_a_carried_record_that_is_not_an_export_line_is_refused(record: dict[str, object]) -> None:
    entry = {"userId": "a", "at": "2021-10-04T21:05:12.000Z", "seq": "1", "record": record}
    with pytest.raises(messages.MalformedMessage):
        messages.decode(json.dumps({"version": 2, "changes": [entry]}))


def test_the_newest_change_is_written_unless_an_export_may_have_passed_it() -> None:
    fresh = UserChange("a", AT, sequence="9", record=_line("a"))
    older = UserChange("a", AT, sequence="8", record=_line("a", firstName="Old"))
    entry = model.merge_pending([fresh, older])["a"]
    assert entry.newest == fresh  # same second: the stream's sequence decides
    assert not entry.must_read(None)  # nothing exported yet
    assert not entry.must_read(AT - timedelta(seconds=1))
    assert entry.must_read(AT)  # a change in the same second may have been exported
    assert entry.must_read(model.READ_ALL)
    by_id = model.merge_pending([UserChange("a", AT + timedelta(hours=1))])["a"]
    assert by_id.must_read(None)  # a version 1 change carries no state
    lines = model.export_lines({"a": entry}, {}, AT - timedelta(seconds=1))
    assert lines == [_line("a")]
    assert model.export_lines({"a": entry}, {"a": {"userId": "a"}}, AT)[0]["email"] is None


def test_bodies_hold_at_most_500_users_and_batches_respect_sqs_limits() -> None:
    changes = [UserChange(f"{n:036d}", AT) for n in range(9001)]
    bodies = messages.bodies(changes)
    assert [len(messages.decode(b)) for b in bodies] == [500] * 18 + [1]
    batches = list(messages.send_batches(bodies))
    assert sum(len(b) for b in batches) == 19
    for batch in batches:
        assert len(batch) <= 10
        assert sum(len(b.encode()) for b in batch) <= messages.MAX_BATCH_BYTES


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"version": 3, "changes": [{"userId": "a", "at": "2021-10-04T21:05:12.000Z"}]}',
        '{"version": 1, "changes": [{"userId": "a", "at": "2021-10-04T21:05:12.000Z", '
        '"seq": "1"}]}',
        '{"version": 2, "changes": [{"userId": "a", "at": "2021-10-04T21:05:12.000Z", '
        '"seq": "x1"}]}',
        '{"version": 2, "changes": [{"userId": "a", "at": "2021-10-04T21:05:12.000Z", '
        '"removed": true, "record": {}}]}',
        '{"version": 1, "changes": []}',
        '{"version": 1, "changes": "a"}',
        '{"version": 1, "changes": [{"userId": "", "at": "2021-10-04T21:05:12.000Z"}]}',
        '{"version": 1, "changes": [{"userId": "a", "at": "yesterday"}]}',
        '{"version": 1, "changes": [{"userId": "a", "at": "2021-10-04T21:05:12"}]}',
        '{"version": 1, "changes": [{"userId": "a", "at": "2021-10-04T21:05:12.000Z", '
        '"removed": "yes"}]}',
        json.dumps(
            {"version": 1, "changes": [{"userId": "a", "at": "2021-10-04T21:05:12.000Z"}] * 501}
        ),
    ],
)
def test_malformed_bodies_are_refused(body: str) -> None:
    with pytest.raises(messages.MalformedMessage):
        messages.decode(body)


def _raw(event: str, user_id: str = "u1", created: object = 1633381512) -> dict[str, object]:
    return {
        "eventID": "e1",
        "eventName": event,
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "ApproximateCreationDateTime": created,
            "Keys": {"userId": {"S": user_id}},
            "NewImage": {"userId": {"S": user_id}, "phone": {"S": "+64210000000"}},
            "SequenceNumber": "1",
        },
    }


def test_stream_records_become_changes_with_the_removal_time() -> None:
    wrapped = records({"Records": [_raw("INSERT"), _raw("REMOVE", created=1633381513.0)]})
    assert [(c.user_id, c.at, c.removed, c.sequence) for c in (r.change() for r in wrapped)] == [
        ("u1", datetime(2021, 10, 4, 21, 5, 12, tzinfo=UTC), False, "1"),
        ("u1", datetime(2021, 10, 4, 21, 5, 13, tzinfo=UTC), True, "1"),
    ]
    assert wrapped[1].change().record is None


def test_a_stream_record_carries_the_export_line_of_its_new_image() -> None:
    raw = _raw("MODIFY")
    raw["dynamodb"]["NewImage"] = {  # type: ignore[index]
        "userId": {"S": "u1"}, "email": {"S": "e@x.nz"}, "firstName": {"S": "F"},
        "lastName": {"S": "L"}, "phone": {"S": "+64210000000"},
        "ethnicity": {"M": {"selected": {"L": [{"S": "Māori"}]}}},
        "updatedAt": {"S": "2021-10-04T21:05:12.345Z"},
    }  # fmt: skip
    change = StreamRecord.wrap(raw).change()
    assert change.record == contract.record_line(
        {"userId": "u1", "email": "e@x.nz", "firstName": "F", "lastName": "L",
         "phone": "+64210000000", "ethnicity": {"selected": ["Māori"]},
         "updatedAt": "2021-10-04T21:05:12.345Z"}
    )  # fmt: skip
    odd = _raw("MODIFY")  # an image outside the contract (a number): carried by id only
    odd["dynamodb"]["NewImage"] = {"userId": {"S": "u1"}, "phone": {"N": "64"}}  # type: ignore[index]
    assert StreamRecord.wrap(odd).change().record is None


@pytest.mark.parametrize(
    "raw", [_raw("UPDATE"), _raw("INSERT", user_id=""), _raw("INSERT", created="soon"), {}]
)
def test_malformed_stream_records_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(MalformedStreamRecord):
        StreamRecord.wrap(raw)


def test_a_stream_batch_stops_at_its_first_malformed_record_and_names_it_for_lambda() -> None:
    first, bad, later = _raw("INSERT", user_id="a"), _raw("UPDATE"), _raw("INSERT", user_id="b")
    bad["dynamodb"]["SequenceNumber"] = "2"  # type: ignore[index]
    wrapped = stream.batch({"Records": [first, bad, later]})
    assert [r.user_id for r in wrapped.records] == ["a"]
    assert wrapped.response() == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert stream.batch({"Records": [first, later]}).response() == {"batchItemFailures": []}
    # Nothing Lambda could retry from: the whole batch fails and the mapping bisects it.
    with pytest.raises(MalformedStreamRecord):
        stream.batch({"Records": [first, {"eventName": "INSERT"}]})
