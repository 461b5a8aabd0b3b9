"""The PersonalDetails contract: the change record's line, its time format, and the item
declaration naming exactly the contract's attributes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from covidtracer.personaldetails import model as contract
from covidtracer.personaldetails.repository import PersonalDetailsItem


def test_a_record_line_has_every_field_in_order_with_nulls_for_absent_ones() -> None:
    line = contract.record_line(
        {"userId": "u", "email": "e@x.nz", "firstName": "F", "lastName": "L",
         "phone": "+6421", "updatedAt": "t", "ethnicity": {"selected": ["Māori"]}}
    )  # fmt: skip
    assert list(line) == [*contract.RECORD_FIELDS, "deleted"]
    assert line["middleName"] is None and line["dateOfBirth"] is None and line["gender"] is None
    assert line["ethnicity"] == {"selected": ["Māori"], "other": None}
    assert line["deleted"] is False


def test_the_item_declares_exactly_the_contracts_attributes() -> None:
    assert set(PersonalDetailsItem.get_attributes()) == set(contract.RECORD_FIELDS)


def test_times_are_utc_with_milliseconds_and_read_back_exactly() -> None:
    moment = datetime(2021, 10, 4, 21, 5, 12, 345000, tzinfo=UTC)
    assert contract.iso_millis(moment) == "2021-10-04T21:05:12.345Z"
    assert contract.parse_iso("2021-10-04T21:05:12.345Z") == moment
    with pytest.raises(ValueError, match="Z suffix"):
        contract.parse_iso("2021-10-04T21:05:12.345+00:00")
