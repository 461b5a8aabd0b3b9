"""The export end to end against moto over HTTP: stream → queue → job → JSON Lines in S3."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from export_rig import FAST, Rig, export_line, item

from covidtracer.errors import Unavailable
from covidtracer.nctsexport import messages
from covidtracer.nctsexport.service import ExportLimits
from covidtracer.personaldetails.model import UserChange, iso_millis

NOW = datetime(2021, 10, 4, 21, 7, 30, tzinfo=UTC)
WINDOW_KEY = "personal-details/2021/10/04/personal-details-20211004T2105Z"


@pytest.fixture
def rig(fresh_aws_stack: Any) -> Rig:
    return Rig(fresh_aws_stack)


def test_changes_flow_from_the_table_through_the_stream_and_queue_into_one_file(rig: Rig) -> None:
    alice = item(
        "user-a",
        middleName="Mere",
        dateOfBirth="1990-01-02",
        gender="female",
        ethnicity={"selected": ["Māori", "NZ European"], "other": "Tongan"},
    )
    bob = item("user-b")
    rig.put(alice)
    rig.put(bob)
    bob_v2 = {**bob, "phone": "+64219999999", "updatedAt": "2021-10-04T21:06:00.123Z"}
    rig.put(bob_v2)

    assert rig.pump() == 3
    assert rig.queued() == 1  # one batch, two users, one message
    result = rig.export(NOW)

    assert result.key == f"{WINDOW_KEY}.jsonl"
    assert rig.lines(result.key) == [
        export_line(
            "user-a",
            alice["updatedAt"],
            middleName="Mere",
            dateOfBirth="1990-01-02",
            gender="female",
            ethnicity={"selected": ["Māori", "NZ European"], "other": "Tongan"},
        ),
        export_line("user-b", "2021-10-04T21:06:00.123Z", phone="+64219999999"),
    ]
    head = rig.s3.head_object(Bucket=rig.bucket_name, Key=result.key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(rig.kms_key.split("/")[-1])
    assert rig.queued() == 0
    assert rig.pump() == 0  # the checkpoint moved on


def test_queue_messages_carry_the_export_line_in_a_queue_encrypted_at_rest(rig: Rig) -> None:
    rig.put(item("user-a", firstName="Secretname", phone="+64211112222"))
    rig.pump()
    body = rig.sqs.receive_message(QueueUrl=rig.queue_url)["Messages"][0]["Body"]
    [change] = messages.decode(body)
    assert change.record is not None and change.record["firstName"] == "Secretname"
    assert change.sequence.isdigit()
    for url in (rig.queue_url, rig.dlq_url):
        attributes = rig.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        assert attributes["Attributes"]["SqsManagedSseEnabled"] == "true"


class CountingTable:
    """The details table, counting the users the export reads back."""

    def __init__(self, rig: Rig) -> None:
        self._table = rig.table
        self.read: list[str] = []

    def current(self, user_ids: Any) -> Any:
        self.read.extend(user_ids)
        return self._table.current(user_ids)


def test_fresh_changes_are_written_from_their_messages_without_reading_the_table(
    rig: Rig,
) -> None:
    rig.put(item("user-a"))
    rig.put(item("user-b"))
    rig.delete("user-b")
    rig.pump()
    table = CountingTable(rig)
    result = rig.export(NOW, table=table)
    assert table.read == [] and result.read == 0
    assert [(line["userId"], line["deleted"]) for line in rig.lines(result.key or "")] == [
        ("user-a", False),
        ("user-b", True),
    ]


def test_a_stale_message_redelivered_after_a_newer_export_is_read_not_written(
    rig: Rig,
) -> None:
    rig.put(item("user-a", firstName="Old"))
    rig.pump()
    stale = rig.sqs.receive_message(QueueUrl=rig.queue_url, VisibilityTimeout=0)["Messages"]
    stale_body = stale[0]["Body"]
    rig.export(NOW)  # exports "Old"
    rig.put(item("user-a", firstName="New"))
    rig.pump()
    rig.export(NOW + timedelta(minutes=5))  # exports "New", raising the mark past it
    # The first message comes back (a DLQ replay, a redelivery): its copy is stale.
    rig.sqs.send_message(QueueUrl=rig.queue_url, MessageBody=stale_body)
    table = CountingTable(rig)
    result = rig.export(NOW + timedelta(minutes=10), table=table)
    assert table.read == ["user-a"]
    assert [line["firstName"] for line in rig.lines(result.key or "")] == ["New"]


def test_a_run_is_skipped_while_another_holds_the_export_state(rig: Rig) -> None:
    rig.put(item("user-a"))
    rig.pump()
    lease = rig.state.acquire("other-run", NOW, NOW + timedelta(minutes=5))
    assert lease is not None
    assert rig.export(NOW).skipped and rig.queued() == 1
    rig.state.release(lease, lease.exported_through)
    assert rig.export(NOW).users == 1 and rig.queued() == 0
    expired = rig.state.acquire("crashed-run", NOW, NOW + timedelta(minutes=5))
    assert expired is not None  # never released: the next run waits for it to expire
    assert rig.state.acquire("next-run", NOW + timedelta(minutes=4), NOW) is None
    assert rig.state.acquire("next-run", NOW + timedelta(minutes=6), NOW) is not None


class CrashBeforeDelete:
    """The queue, except that the process dies after the file is written."""

    def __init__(self, rig: Rig) -> None:
        self._queue = rig.queue

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)

    def delete(self, received: Any) -> int:
        raise RuntimeError("the Lambda was killed")


def test_a_crash_between_file_and_delete_repeats_the_user_later_and_loses_nothing(
    rig: Rig,
) -> None:
    rig.put(item("user-a"))
    rig.pump()
    short = ExportLimits(wait_seconds=0, visibility_timeout=1)
    with pytest.raises(RuntimeError):
        rig.export(NOW, short, queue=CrashBeforeDelete(rig))
    [first] = rig.keys()
    assert [line["userId"] for line in rig.lines(first)] == ["user-a"]
    assert rig.queued() == 1  # not deleted

    time.sleep(1.2)  # the message becomes visible again
    later = rig.export(NOW + timedelta(minutes=5), FAST)
    assert later.key == "personal-details/2021/10/04/personal-details-20211004T2110Z.jsonl"
    assert [line["userId"] for line in rig.lines(later.key)] == ["user-a"]
    assert rig.queued() == 0
    assert rig.lines(first) == [rig.lines(first)[0]]  # the first file is untouched


def test_a_backlog_of_9000_users_is_exported_as_8500_then_500(rig: Rig) -> None:
    at = datetime(2021, 10, 4, 21, 0, tzinfo=UTC)
    users = [f"user-{n:05d}" for n in range(9000)]
    rig.queue.send(messages.bodies([UserChange(u, at) for u in users]))

    first = rig.export(NOW)
    second = rig.export(NOW + timedelta(minutes=5))
    third = rig.export(NOW + timedelta(minutes=10))

    assert first.key and second.key
    first_ids = [line["userId"] for line in rig.lines(first.key)]
    second_ids = [line["userId"] for line in rig.lines(second.key)]
    assert len(first_ids) == len(set(first_ids)) == 8500
    assert len(second_ids) == 500
    assert set(first_ids) | set(second_ids) == set(users)
    assert third.key is None and rig.queued() == 0
    # Nobody has an item: each is a tombstone at its queued change time.
    assert rig.lines(second.key)[0] == {
        "userId": second_ids[0],
        "updatedAt": "2021-10-04T21:00:00.000Z",
        "deleted": True,
    }


def test_a_user_in_several_messages_appears_once_with_the_newest_data(rig: Rig) -> None:
    at = datetime(2021, 10, 4, 21, 0, tzinfo=UTC)
    rig.put(item("user-a", firstName="Old"))
    rig.queue.send(messages.bodies([UserChange("user-a", at), UserChange("user-b", at)]))
    rig.put(item("user-a", firstName="New", updatedAt="2021-10-04T21:06:00.000Z"))
    rig.queue.send(messages.bodies([UserChange("user-a", at + timedelta(seconds=1))]))
    rig.queue.send(messages.bodies([UserChange("user-a", at + timedelta(seconds=2))]))

    result = rig.export(NOW)

    assert result.messages == 3
    lines = rig.lines(result.key or "")
    assert [line["userId"] for line in lines] == ["user-a", "user-b"]
    assert lines[0]["firstName"] == "New" and lines[0]["updatedAt"] == "2021-10-04T21:06:00.000Z"


def test_a_deletion_is_a_tombstone_and_a_returning_user_appears_again(rig: Rig) -> None:
    rig.put(item("user-a"))
    rig.pump()
    first = rig.export(NOW)
    assert rig.lines(first.key or "")[0]["deleted"] is False

    before = datetime.now(UTC).replace(microsecond=0)
    rig.delete("user-a")
    rig.pump()
    after = datetime.now(UTC)
    second = rig.export(NOW + timedelta(minutes=5))
    [tombstone] = rig.lines(second.key or "")
    assert tombstone.keys() == {"userId", "updatedAt", "deleted"}
    assert tombstone["userId"] == "user-a" and tombstone["deleted"] is True
    deleted_at = datetime.fromisoformat(tombstone["updatedAt"].replace("Z", "+00:00"))
    assert before <= deleted_at <= after

    again = item("user-a", firstName="Returned")
    rig.put(again)
    rig.pump()
    third = rig.export(NOW + timedelta(minutes=10))
    assert rig.lines(third.key or "") == [
        export_line("user-a", again["updatedAt"], firstName="Returned")
    ]


def test_deleted_then_recreated_within_one_batch_exports_the_currentexport_line(rig: Rig) -> None:
    rig.put(item("user-a", firstName="First"))
    rig.delete("user-a")
    rig.put(item("user-a", firstName="Second"))
    rig.pump()
    [line] = rig.lines(rig.export(NOW).key or "")
    assert line["firstName"] == "Second" and line["deleted"] is False


def test_a_poison_message_reaches_the_dlq_without_blocking_the_others(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.sqs.send_message(QueueUrl=rig.queue_url, MessageBody='{"version": 1, "changes": "x"}')
    rig.put(item("user-a"))
    rig.pump()
    short = ExportLimits(wait_seconds=0, visibility_timeout=1)

    with caplog.at_level(logging.ERROR):
        first = rig.export(NOW, short)
    assert first.malformed == 1 and first.messages == 1
    assert [line["userId"] for line in rig.lines(first.key or "")] == ["user-a"]
    [logged] = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert logged.error_type == "MalformedMessage"  # type: ignore[attr-defined]
    assert logged.message_id  # type: ignore[attr-defined]

    for _ in range(6):
        if rig.queued(rig.dlq_url):
            break
        time.sleep(1.1)
        assert rig.export(NOW, short).key is None
    parked = rig.sqs.receive_message(
        QueueUrl=rig.dlq_url, MessageSystemAttributeNames=["ApproximateReceiveCount"]
    )["Messages"]
    assert [m["Body"] for m in parked] == ['{"version": 1, "changes": "x"}']
    assert rig.queued() == 0


def test_a_second_file_in_the_same_window_gets_a_suffix_and_never_overwrites(rig: Rig) -> None:
    at = datetime(2021, 10, 4, 21, 0, tzinfo=UTC)
    rig.queue.send(messages.bodies([UserChange("user-a", at)]))
    first = rig.export(NOW)
    rig.queue.send(messages.bodies([UserChange("user-b", at)]))
    second = rig.export(NOW + timedelta(minutes=2))  # same 21:05 window
    rig.queue.send(messages.bodies([UserChange("user-c", at)]))
    third = rig.export(NOW)

    assert [first.key, second.key, third.key] == [
        f"{WINDOW_KEY}.jsonl",
        f"{WINDOW_KEY}-1.jsonl",
        f"{WINDOW_KEY}-2.jsonl",
    ]
    keys = [first.key, second.key, third.key]
    assert [rig.lines(k or "")[0]["userId"] for k in keys] == ["user-a", "user-b", "user-c"]
    assert len(rig.keys()) == 3


def test_the_bucket_refuses_to_replace_an_existing_file(rig: Rig) -> None:
    key = f"{WINDOW_KEY}.jsonl"
    rig.s3.put_object(Bucket=rig.bucket_name, Key=key, Body=b"theirs\n")
    assert rig.bucket.put_new([key, "other.jsonl"], b"ours\n") == "other.jsonl"
    assert rig.s3.get_object(Bucket=rig.bucket_name, Key=key)["Body"].read() == b"theirs\n"
    with pytest.raises(Unavailable):
        rig.bucket.put_new([key], b"ours\n")


def test_an_empty_queue_writes_no_file(rig: Rig) -> None:
    assert rig.export(NOW).key is None
    assert rig.keys() == []


def test_the_tombstone_time_is_the_deletion_time_carried_in_the_message(rig: Rig) -> None:
    changed = datetime(2021, 10, 4, 20, 0, tzinfo=UTC)
    deleted = datetime(2021, 10, 4, 20, 30, 15, tzinfo=UTC)
    rig.queue.send(messages.bodies([UserChange("user-a", changed)]))
    rig.queue.send(messages.bodies([UserChange("user-a", deleted, removed=True)]))
    [line] = rig.lines(rig.export(NOW).key or "")
    assert line == {"userId": "user-a", "updatedAt": iso_millis(deleted), "deleted": True}
