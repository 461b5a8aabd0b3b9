"""The DynamoDB adapters against moto over HTTP, and the same contract on their in-memory
twins (so unit tests that use the twins test the real behaviour)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from covidtracer.errors import Unavailable
from covidtracer.signin.model import SignInRecord, StaleSession
from covidtracer.signin.repository import (
    DynamoSignInRecords,
    DynamoUsers,
    MemorySignInRecords,
    SignInRecords,
)
from tracerstack.local_cognito import DynamoLocalSessions, LocalSession


@pytest.fixture(params=["dynamodb", "memory"])
def records(request: pytest.FixtureRequest, service_env: dict[str, str]) -> SignInRecords:
    if request.param == "memory":
        return MemorySignInRecords()
    return DynamoSignInRecords(service_env["SIGN_IN_SESSIONS_TABLE"])


def record(**changes: object) -> SignInRecord:
    fields: dict[str, object] = {
        "verification_id": uuid.uuid4().hex,
        "user_id": "sub-1",
        "email_key": uuid.uuid4().hex,
        "client_id": "ios",
        "session": "cognito-session-1",
        "created_at": 1_700_000_000,
        "expires_at": 1_700_000_300,
    }
    fields.update(changes)
    return SignInRecord(**fields)  # type: ignore[arg-type]


def test_a_record_is_stored_read_and_deleted(records: SignInRecords) -> None:
    stored = record()
    records.add(stored)
    assert records.get(stored.verification_id) == stored
    assert records.current(stored.email_key) == stored.verification_id
    records.delete(stored.verification_id)
    assert records.get(stored.verification_id) is None
    assert records.get("never-issued") is None


def test_a_later_record_for_the_email_becomes_current(records: SignInRecords) -> None:
    first = record()
    second = record(email_key=first.email_key)
    records.add(first)
    records.add(second)
    assert records.current(first.email_key) == second.verification_id
    assert records.current("no-such-email") is None


def test_the_session_is_replaced_only_from_the_session_read(records: SignInRecords) -> None:
    stored = record()
    records.add(stored)
    records.replace_session(stored, "cognito-session-2")
    assert records.get(stored.verification_id).session == "cognito-session-2"  # type: ignore[union-attr]
    with pytest.raises(StaleSession):
        records.replace_session(stored, "cognito-session-3")  # read before the change


def test_users_are_upserted_idempotently_and_never_moved_back(service_env: dict[str, str]) -> None:
    users = DynamoUsers(service_env["USERS_TABLE"])
    user_id = str(uuid.uuid4())
    users.record_sign_in(user_id, "a@example.nz", "2026-03-04T05:06:07.000Z")
    users.record_sign_in(user_id, "a@example.nz", "2026-03-04T05:06:07.000Z")  # redelivered
    users.record_sign_in(user_id, "b@example.nz", "2026-03-05T00:00:00.000Z")
    users.record_sign_in(user_id, "old@example.nz", "2026-03-01T00:00:00.000Z")  # late
    row = users.get(user_id)
    assert row is not None
    assert (row.email, row.email_verified) == ("b@example.nz", True)
    assert row.last_sign_in_at == "2026-03-05T00:00:00.000Z"
    assert row.created_at == "2026-03-04T05:06:07.000Z"


def test_a_local_cognito_session_answers_once(service_env: dict[str, str]) -> None:
    sessions = DynamoLocalSessions(service_env["SIGN_IN_SESSIONS_TABLE"])
    session = LocalSession(uuid.uuid4().hex, "user", "sub", "ios", "[]", '{"code": "1"}', "", 9)
    sessions.add(session)
    assert sessions.take(session.session_id) == session
    assert sessions.take(session.session_id) is None


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.get("x"),
        lambda r: r.add(record()),
        lambda r: r.delete("x"),
    ],
)
def test_a_missing_table_is_unavailable(
    service_env: dict[str, str], call: Callable[[DynamoSignInRecords], object], iam_denials: Any
) -> None:
    with pytest.raises(Unavailable):
        call(DynamoSignInRecords("no-such-table"))
    # Under the role a table outside it is refused by IAM before DynamoDB looks (as in AWS).
    assert {d.resource.rpartition("/")[2] for d in iam_denials()} == {"no-such-table"}
