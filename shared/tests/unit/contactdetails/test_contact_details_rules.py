"""Contact details (DESIGN §2.2): the field rules as a table, and the use cases over the
in-memory twins (the same stores' DynamoDB versions are in the integration contract test)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from covidtracer.contactdetails import model, service
from covidtracer.errors import NotFound, Unauthorized, ValidationError
from tracerstack.details_fakes import DETAILS, MemoryAccountEmails, MemoryContactDetails

NOW = datetime(2024, 2, 29, 10, 30, 15, 123456, tzinfo=UTC)
VALID = {"firstName": "Aroha", "lastName": "Smith", "phone": "+64 21 012 3456"}


def _problems(body: dict[str, Any], *, partial: bool = False) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        model.parse_details(body, now=NOW, partial=partial)
    return caught.value.errors


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"firstName": None}, "FirstName"),
        ({"firstName": ""}, "FirstName"),
        ({"firstName": "   "}, "FirstName"),
        ({"firstName": "A" * 51}, "FirstName"),
        ({"firstName": "Zoë3"}, "FirstName"),
        ({"firstName": "Robert'); DROP TABLE"}, "FirstName"),
        ({"firstName": "李"}, "FirstName"),
        ({"firstName": 7}, "FirstName"),
        ({"lastName": None}, "LastName"),
        ({"lastName": "Sm!th"}, "LastName"),
        ({"lastName": "B" * 51}, "LastName"),
        ({"middleName": "M" * 101}, "MiddleName"),
        ({"middleName": "<b>"}, "MiddleName"),
        ({"middleName": ["Mere"]}, "MiddleName"),
        ({"phone": None}, "Phone"),
        ({"phone": "021 012 3456"}, "Phone"),  # national format
        ({"phone": "+64-21-012-3456"}, "Phone"),  # only spaces are allowed
        ({"phone": "+0 21 012 3456"}, "Phone"),  # no country code starts with 0
        ({"phone": "+64 123"}, "Phone"),  # too short for E.164
        ({"phone": "+64 21012345678901"}, "Phone"),  # 16 digits: too long for E.164
        ({"phone": "+6421012345\n"}, "Phone"),
        ({"phone": "+" + " " * 40 + "64210123456"}, "Phone"),  # text bounded before parsing
        ({"phone": 64210123456}, "Phone"),
        ({"dateOfBirth": "1990-1-2"}, "DateOfBirth"),
        ({"dateOfBirth": "02/01/1990"}, "DateOfBirth"),
        ({"dateOfBirth": "1990-02-30"}, "DateOfBirth"),  # not a real date
        ({"dateOfBirth": "2023-02-29"}, "DateOfBirth"),  # not a leap year
        ({"dateOfBirth": "2024-03-02"}, "DateOfBirth"),  # in the future everywhere
        ({"dateOfBirth": "1893-02-28"}, "DateOfBirth"),  # 131 today
        ({"dateOfBirth": "1800-01-01"}, "DateOfBirth"),
        ({"dateOfBirth": "1990-01-02T00:00:00Z"}, "DateOfBirth"),
        ({"dateOfBirth": 19900102}, "DateOfBirth"),
        ({"gender": "g" * 51}, "Gender"),
        ({"gender": {"value": "female"}}, "Gender"),
        ({"ethnicity": "Māori"}, "Ethnicity"),
        ({"ethnicity": ["Māori"]}, "Ethnicity"),
        ({"ethnicity": {"selected": "Māori"}}, "Ethnicity.Selected"),
        ({"ethnicity": {"selected": ["x"] * 21}}, "Ethnicity.Selected"),
        ({"ethnicity": {"selected": ["Māori", 3]}}, "Ethnicity.Selected[1]"),
        ({"ethnicity": {"selected": [""]}}, "Ethnicity.Selected[0]"),
        ({"ethnicity": {"selected": ["e" * 101]}}, "Ethnicity.Selected[0]"),
        ({"ethnicity": {"other": "o" * 101}}, "Ethnicity.Other"),
        ({"ethnicity": {"other": ["Tongan"]}}, "Ethnicity.Other"),
        ({"ethnicity": {"selected": [], "level": 4}}, "Ethnicity.Level"),
        ({"userId": "someone-else"}, "UserId"),
        ({"email": "me@example.nz"}, "Email"),
        ({"updatedAt": "2021-10-04T21:05:12.345Z"}, "UpdatedAt"),
        ({"favouriteColour": "blue"}, "FavouriteColour"),
    ],
)
def test_a_put_with_a_broken_rule_names_the_field_and_never_echoes_it(
    change: dict[str, Any], key: str
) -> None:
    errors = _problems({**VALID, **change})
    assert list(errors) == [key]
    sent = next(iter(change.values()))
    if isinstance(sent, str) and len(sent) > 3:
        assert all(sent not in message for message in errors[key])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, {"firstName": "Aroha", "lastName": "Smith", "phone": "+64210123456"}),
        ({"firstName": "  Mere  "}, {"firstName": "Mere"}),
        ({"firstName": "A" * 50}, {"firstName": "A" * 50}),
        ({"firstName": "Zoë-Ngāio O'Brien"}, {"firstName": "Zoë-Ngāio O'Brien"}),
        ({"lastName": "Te Whāiti ʼAna’s"}, {"lastName": "Te Whāiti ʼAna’s"}),
        ({"lastName": "Šimůnek Žák"}, {"lastName": "Šimůnek Žák"}),
        ({"middleName": "M" * 100}, {"middleName": "M" * 100}),
        ({"middleName": ""}, {"middleName": None}),
        ({"middleName": None}, {"middleName": None}),
        ({"phone": "+64210123456"}, {"phone": "+64210123456"}),
        ({"phone": "  +44 20 7946 0958 "}, {"phone": "+442079460958"}),
        ({"phone": "+1 2025550123"}, {"phone": "+12025550123"}),
        ({"dateOfBirth": "1990-01-02"}, {"dateOfBirth": "1990-01-02"}),
        ({"dateOfBirth": "2024-02-29"}, {"dateOfBirth": "2024-02-29"}),  # born today
        ({"dateOfBirth": "2024-03-01"}, {"dateOfBirth": "2024-03-01"}),  # today in UTC+14
        ({"dateOfBirth": "1893-03-01"}, {"dateOfBirth": "1893-03-01"}),  # 130 today
        ({"dateOfBirth": ""}, {"dateOfBirth": None}),
        ({"gender": "g" * 50}, {"gender": "g" * 50}),
        ({"gender": " "}, {"gender": None}),
        (
            {"ethnicity": {"selected": ["Māori", " Samoan "], "other": "Tongan"}},
            {"ethnicity": model.Ethnicity(("Māori", "Samoan"), "Tongan")},
        ),
        ({"ethnicity": {"selected": ["x"] * 20}}, {"ethnicity": model.Ethnicity(("x",) * 20)}),
        ({"ethnicity": {"other": "Tongan"}}, {"ethnicity": model.Ethnicity((), "Tongan")}),
        ({"ethnicity": {"selected": [], "other": ""}}, {"ethnicity": None}),
        ({"ethnicity": None}, {"ethnicity": None}),
    ],
)
def test_a_valid_put_gives_the_fields_to_store(
    change: dict[str, Any], expected: dict[str, Any]
) -> None:
    changes = model.parse_details({**VALID, **change}, now=NOW, partial=False)
    for name, value in expected.items():
        assert changes[name] == value


def test_every_problem_is_reported_at_once() -> None:
    errors = _problems({"middleName": "3", "userId": "x"})
    assert set(errors) == {"FirstName", "LastName", "Phone", "MiddleName", "UserId"}


def test_a_patch_takes_any_subset_of_the_fields_but_cannot_clear_a_required_one() -> None:
    assert model.parse_details({"phone": "+64 27 555 0100"}, now=NOW, partial=True) == {
        "phone": "+64275550100"
    }
    assert model.parse_details({"lastName": "Ngata"}, now=NOW, partial=True) == {
        "lastName": "Ngata"
    }
    assert model.parse_details({}, now=NOW, partial=True) == {}
    assert model.parse_details({"gender": None}, now=NOW, partial=True) == {"gender": None}
    assert set(_problems({"firstName": None, "phone": ""}, partial=True)) == {
        "FirstName",
        "Phone",
    }
    assert set(_problems({"userId": "x"}, partial=True)) == {"UserId"}


def test_the_record_body_omits_absent_fields_and_carries_email_and_updated_at() -> None:
    details = model.apply_details(
        None,
        model.parse_details(VALID, now=NOW, partial=False),
        user_id="u1",
        email="aroha@example.nz",
        updated_at="2024-02-29T10:30:15.123Z",
    )
    assert details.wire() == {
        "firstName": "Aroha",
        "lastName": "Smith",
        "phone": "+64210123456",
        "email": "aroha@example.nz",
        "updatedAt": "2024-02-29T10:30:15.123Z",
    }


# ---------------------------------------------------------------------------- use cases


@pytest.fixture
def deps() -> service.Dependencies:
    return service.Dependencies(
        details=MemoryContactDetails(),
        emails=MemoryAccountEmails({"u1": "aroha@example.nz", "u2": "bo@example.nz"}),
    )


def test_put_stores_the_record_with_the_account_email_and_the_time_in_milliseconds(
    deps: service.Dependencies,
) -> None:
    body = service.replace_contact_details(
        deps, service.DetailsChange("u1", {**VALID, "gender": "female"}), NOW
    )
    assert body["email"] == "aroha@example.nz"
    assert body["updatedAt"] == "2024-02-29T10:30:15.123Z"
    assert body["phone"] == "+64210123456"
    assert service.get_contact_details(deps, "u1", NOW) == body
    with pytest.raises(NotFound):
        service.get_contact_details(deps, "u2", NOW)


def test_put_replaces_and_patch_merges(deps: service.Dependencies) -> None:
    service.replace_contact_details(
        deps, service.DetailsChange("u1", {**VALID, "middleName": "Mere", "gender": "female"}), NOW
    )
    replaced = service.replace_contact_details(deps, service.DetailsChange("u1", VALID), NOW)
    assert "middleName" not in replaced and "gender" not in replaced

    service.replace_contact_details(
        deps, service.DetailsChange("u1", {**VALID, "gender": "female"}), NOW
    )
    patched = service.update_contact_details(
        deps, service.DetailsChange("u1", {"lastName": "Ngata", "middleName": "Mere"}), NOW
    )
    assert patched["lastName"] == "Ngata"
    assert patched["middleName"] == "Mere"
    assert patched["gender"] == "female" and patched["firstName"] == "Aroha"


def test_the_first_patch_creates_the_record_as_old_apps_expect(
    deps: service.Dependencies,
) -> None:
    # Apps 3.0.0-6.1.1 send one PATCH after the first sign-in and never PUT (CLIENTS.md).
    created = service.update_contact_details(deps, service.DetailsChange("u1", VALID), NOW)
    assert created == {
        "firstName": "Aroha",
        "lastName": "Smith",
        "phone": "+64210123456",
        "email": "aroha@example.nz",
        "updatedAt": "2024-02-29T10:30:15.123Z",
    }
    assert service.get_contact_details(deps, "u1", NOW) == created


def test_a_creating_patch_needs_both_names_but_not_the_phone(
    deps: service.Dependencies,
) -> None:
    with pytest.raises(ValidationError) as refused:
        service.update_contact_details(
            deps, service.DetailsChange("u1", {"firstName": "Aroha"}), NOW
        )
    assert list(refused.value.errors) == ["LastName"]
    with pytest.raises(NotFound):
        service.update_contact_details(deps, service.DetailsChange("u1", {}), NOW)
    with pytest.raises(NotFound):
        service.get_contact_details(deps, "u1", NOW)
    names = {"firstName": "Aroha", "lastName": "Smith"}
    created = service.update_contact_details(deps, service.DetailsChange("u1", names), NOW)
    assert "phone" not in created and created["firstName"] == "Aroha"


def test_a_creating_patch_for_an_account_that_no_longer_exists_is_unauthorized(
    deps: service.Dependencies,
) -> None:
    with pytest.raises(Unauthorized):
        service.update_contact_details(deps, service.DetailsChange("gone", VALID), NOW)


def test_put_for_an_account_that_no_longer_exists_is_unauthorized(
    deps: service.Dependencies,
) -> None:
    with pytest.raises(Unauthorized):
        service.replace_contact_details(deps, service.DetailsChange("gone", VALID), NOW)


def test_delete_removes_the_record_and_may_be_repeated(deps: service.Dependencies) -> None:
    service.replace_contact_details(deps, service.DetailsChange("u1", VALID), NOW)
    service.delete_contact_details(deps, "u1", NOW)
    with pytest.raises(NotFound):
        service.get_contact_details(deps, "u1", NOW)
    service.delete_contact_details(deps, "u1", NOW)  # a retry after a lost response


# ------------------------------------------------- the rule table of the HTTP tier, moved here

RECORD = DETAILS

# Every rule of §2.2, one broken at a time over a whole record, for PUT and for PATCH.
BROKEN = [
    ({"firstName": None}, "FirstName"),
    ({"firstName": "A" * 51}, "FirstName"),
    ({"firstName": "Aroha2"}, "FirstName"),
    ({"lastName": ""}, "LastName"),
    ({"lastName": "L" * 51}, "LastName"),
    ({"lastName": "Sm!th"}, "LastName"),
    ({"middleName": "M" * 101}, "MiddleName"),
    ({"middleName": "M3re"}, "MiddleName"),
    ({"phone": None}, "Phone"),
    ({"phone": "021 012 3456"}, "Phone"),
    ({"phone": "+64-21-012-3456"}, "Phone"),
    ({"phone": "+64 21012345678901"}, "Phone"),
    ({"dateOfBirth": "1990-02-30"}, "DateOfBirth"),
    ({"dateOfBirth": "3000-01-01"}, "DateOfBirth"),
    ({"dateOfBirth": "1850-01-01"}, "DateOfBirth"),
    ({"dateOfBirth": "02/01/1990"}, "DateOfBirth"),
    ({"gender": "g" * 51}, "Gender"),
    ({"ethnicity": "Māori"}, "Ethnicity"),
    ({"ethnicity": {"selected": ["x"] * 21}}, "Ethnicity.Selected"),
    ({"ethnicity": {"selected": ["e" * 101]}}, "Ethnicity.Selected[0]"),
    ({"ethnicity": {"other": "o" * 101}}, "Ethnicity.Other"),
    ({"ethnicity": {"selected": [], "extra": 1}}, "Ethnicity.Extra"),
    ({"userId": "00000000-0000-0000-0000-000000000000"}, "UserId"),
    ({"nickname": "Ro"}, "Nickname"),
    # Control characters (issue 11, 7).
    ({"gender": "Wahine\u0000"}, "Gender"),
    ({"gender": "x\u001b[31m"}, "Gender"),
    ({"ethnicity": {"selected": ["Māori\u0000"]}}, "Ethnicity.Selected[0]"),
    ({"ethnicity": {"selected": [], "other": "\u0007"}}, "Ethnicity.Other"),
    ({"phone": "+64210123456\n"}, "Phone"),
]


@pytest.mark.parametrize(("change", "key"), BROKEN)
def test_a_broken_rule_is_a_validation_error_for_that_field_and_stores_nothing(
    deps: service.Dependencies, change: dict[str, Any], key: str
) -> None:
    request = service.DetailsChange("u1", {**RECORD, **change})
    for use_case in (service.replace_contact_details, service.update_contact_details):
        with pytest.raises(ValidationError) as caught:
            use_case(deps, request, NOW)
        assert list(caught.value.errors) == [key], use_case.__name__
        sent = json.dumps(next(iter(change.values())), ensure_ascii=False).strip('"')
        if len(sent) > 4:
            assert sent not in json.dumps(caught.value.body(), ensure_ascii=False)
    assert isinstance(deps.details, MemoryContactDetails) and deps.details.items == {}


def test_a_patch_may_clear_optional_fields_but_not_required_ones(
    deps: service.Dependencies,
) -> None:
    service.replace_contact_details(deps, service.DetailsChange("u1", RECORD), NOW)
    cleared = {"middleName": None, "gender": "", "ethnicity": None}
    body = service.update_contact_details(deps, service.DetailsChange("u1", cleared), NOW)
    assert {"middleName", "gender", "ethnicity"} & set(body) == set()
    with pytest.raises(ValidationError) as caught:
        service.update_contact_details(deps, service.DetailsChange("u1", {"lastName": None}), NOW)
    assert list(caught.value.errors) == ["LastName"]
