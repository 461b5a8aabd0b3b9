"""``PersonalDetails``: one contract for the in-memory twin and DynamoDB over moto, the item
written exactly as ``covidtracer.personaldetails.model`` defines it, and the account-email
lookup."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from covidtracer.contactdetails import model
from covidtracer.contactdetails.repository import AccountEmailsFromUsers, DynamoContactDetails
from covidtracer.contactdetails.settings import details_settings
from covidtracer.errors import NotFound, Unavailable
from covidtracer.signin.repository import DynamoUsers
from tracerstack.bootstrap import Bootstrap
from tracerstack.details_fakes import MemoryContactDetails, twin_or_real

RECORD = model.ContactDetails(
    user_id="u1",
    email="aroha@example.nz",
    first_name="Aroha",
    last_name="Smith",
    phone="+64210123456",
    updated_at="2021-10-04T21:05:12.345Z",
    middle_name="Mere",
    date_of_birth="1990-01-02",
    gender="female",
    ethnicity=model.Ethnicity(("Māori", "NZ European"), "Tongan"),
)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest, service_env: dict[str, str]) -> Any:
    table = service_env["PERSONAL_DETAILS_TABLE"]
    return twin_or_real(request.param, MemoryContactDetails, lambda: DynamoContactDetails(table))


def _user() -> str:
    return str(uuid.uuid4())


def test_a_record_round_trips_with_every_field(store: Any) -> None:
    record = model.ContactDetails(**{**RECORD.__dict__, "user_id": _user()})
    assert store.get(record.user_id) is None
    store.put(record)
    assert store.get(record.user_id) == record


def test_put_replaces_the_whole_record(store: Any) -> None:
    user = _user()
    store.put(model.ContactDetails(**{**RECORD.__dict__, "user_id": user}))
    bare = model.ContactDetails(user, "a@example.nz", "Bo", "Ngata", "+64275550100", "t2")
    store.put(bare)
    assert store.get(user) == bare


def test_update_sets_and_removes_fields_and_returns_the_stored_record(store: Any) -> None:
    user = _user()
    store.put(model.ContactDetails(**{**RECORD.__dict__, "user_id": user}))
    updated = store.update(
        user,
        {"lastName": "Ngata", "middleName": None, "ethnicity": model.Ethnicity(("Samoan",))},
        "2021-10-05T00:00:00.000Z",
    )
    assert updated == store.get(user)
    assert (updated.last_name, updated.middle_name, updated.first_name) == ("Ngata", None, "Aroha")
    assert updated.ethnicity == model.Ethnicity(("Samoan",))
    assert updated.updated_at == "2021-10-05T00:00:00.000Z"
    assert updated.email == RECORD.email


def test_update_of_a_missing_record_is_not_found_and_creates_nothing(store: Any) -> None:
    user = _user()
    with pytest.raises(NotFound):
        store.update(user, {"firstName": "Aroha"}, "t")
    assert store.get(user) is None


def test_delete_reports_whether_there_was_a_record(store: Any) -> None:
    user = _user()
    store.put(model.ContactDetails(**{**RECORD.__dict__, "user_id": user}))
    assert store.delete(user) is True
    assert store.get(user) is None
    assert store.delete(user) is False


def test_the_item_is_exactly_the_export_contract(
    service_env: dict[str, str], aws_stack: Bootstrap
) -> None:
    table = service_env["PERSONAL_DETAILS_TABLE"]
    store = DynamoContactDetails(table)
    full, bare = _user(), _user()
    store.put(model.ContactDetails(**{**RECORD.__dict__, "user_id": full}))
    store.put(model.ContactDetails(bare, "b@example.nz", "Bo", "Ngata", "+64275550100", "t"))
    ddb = aws_stack.client("dynamodb")

    item = ddb.get_item(TableName=table, Key={"userId": {"S": full}})["Item"]
    assert item == {
        "userId": {"S": full},
        "email": {"S": "aroha@example.nz"},
        "firstName": {"S": "Aroha"},
        "middleName": {"S": "Mere"},
        "lastName": {"S": "Smith"},
        "phone": {"S": "+64210123456"},
        "dateOfBirth": {"S": "1990-01-02"},
        "gender": {"S": "female"},
        "ethnicity": {
            "M": {
                "selected": {"L": [{"S": "Māori"}, {"S": "NZ European"}]},
                "other": {"S": "Tongan"},
            }
        },
        "updatedAt": {"S": "2021-10-04T21:05:12.345Z"},
    }
    item = ddb.get_item(TableName=table, Key={"userId": {"S": bare}})["Item"]
    assert set(item) == {"userId", "email", "firstName", "lastName", "phone", "updatedAt"}

    store.update(full, {"ethnicity": model.Ethnicity((), "Tongan"), "gender": None}, "t2")
    item = ddb.get_item(TableName=table, Key={"userId": {"S": full}})["Item"]
    assert "gender" not in item
    assert item["ethnicity"] == {"M": {"selected": {"L": []}, "other": {"S": "Tongan"}}}


def test_a_missing_table_is_unavailable(service_env: dict[str, str], iam_denials: Any) -> None:
    store = DynamoContactDetails("no-such-table")
    with pytest.raises(Unavailable):
        store.get("u1")
    with pytest.raises(Unavailable):
        store.put(RECORD)
    with pytest.raises(Unavailable):
        store.update("u1", {"firstName": "A"}, "t")
    with pytest.raises(Unavailable):
        store.delete("u1")
    # Under the role a table outside it is refused by IAM before DynamoDB looks (as in AWS).
    assert {d.resource.rpartition("/")[2] for d in iam_denials()} == {"no-such-table"}


def test_the_email_comes_from_the_users_row_else_from_cognito(
    service_env: dict[str, str], aws_stack: Bootstrap
) -> None:
    details = details_settings()
    emails = AccountEmailsFromUsers(details.tables.users, details.user_pool_id)
    cognito = aws_stack.client("cognito-idp")
    created = cognito.admin_create_user(
        UserPoolId=details.user_pool_id,
        Username="kiri@example.nz",
        UserAttributes=[{"Name": "email", "Value": "kiri@example.nz"}],
        MessageAction="SUPPRESS",
    )["User"]
    sub = next(a["Value"] for a in created["Attributes"] if a["Name"] == "sub")

    assert emails.email_of(sub) == "kiri@example.nz"  # no Users row yet: Cognito
    DynamoUsers(details.tables.users).record_sign_in(
        sub, "kiri.new@example.nz", "2021-10-04T21:05:12Z"
    )
    assert emails.email_of(sub) == "kiri.new@example.nz"  # the row wins
    assert emails.email_of(str(uuid.uuid4())) is None
    assert emails.email_of('x" or sub ^= "') is None
