"""The numbers of GET /exposures?since=&limit= are ASCII digits, whatever reaches the parser,
and a listing out of bounds is refused before the database is asked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from covidtracer.enffiles import service as export_service
from covidtracer.errors import ValidationError

NOW = datetime(2021, 10, 15, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["²", "٣", "１", "-1", "1.0", " 1", "1" * 19])
def test_a_listing_number_that_is_not_plain_ascii_digits_is_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        export_service._parse_int({"since": raw}, "since", "Since", 0)


@pytest.mark.parametrize(("raw", "value"), [(None, 7), ("", 7), ("0", 0), ("42", 42)])
def test_a_listing_number_is_read_or_defaulted(raw: str | None, value: int) -> None:
    assert export_service._parse_int({"since": raw}, "since", "Since", 7) == value


@pytest.fixture
def deps(enf_environ: dict[str, str]) -> export_service.Deps:
    from covidtracer.enffiles import wiring
    from covidtracer.enfkeys.settings import EnfSettings

    return wiring.deps_for(
        EnfSettings.from_env({**enf_environ, "DATABASE_URL": "postgresql://127.0.0.1:9/x"})
    )


@pytest.mark.parametrize("query", ["since=abc", "limit=0", "limit=100000", "since=-1"])
def test_a_listing_with_bad_parameters_is_refused_before_any_query(
    deps: export_service.Deps, query: str
) -> None:
    name, _, value = query.partition("=")
    with pytest.raises(ValidationError):
        export_service.list_files(deps, {name: value}, NOW)
