"""The numbers of GET /exposures?since=&limit= are ASCII digits, whatever reaches the parser."""

from __future__ import annotations

import pytest

from covidtracer.enffiles import service as export_service
from covidtracer.errors import ValidationError


@pytest.mark.parametrize("raw", ["²", "٣", "１", "-1", "1.0", " 1", "1" * 19])
def test_a_listing_number_that_is_not_plain_ascii_digits_is_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        export_service._parse_int({"since": raw}, "since", "Since", 0)


@pytest.mark.parametrize(("raw", "value"), [(None, 7), ("", 7), ("0", 0), ("42", 42)])
def test_a_listing_number_is_read_or_defaulted(raw: str | None, value: int) -> None:
    assert export_service._parse_int({"since": raw}, "since", "Since", 7) == value
