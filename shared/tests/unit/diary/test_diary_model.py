"""Pure rules of diary uploads: the 60-day cut, the clock skew, every problem at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from covidtracer.diary import model
from covidtracer.diary.settings import DiarySettings
from covidtracer.errors import ValidationError

NOW = datetime(2021, 10, 5, 12, 0, tzinfo=UTC)


def _diary(*ages: timedelta) -> dict[str, object]:
    return {
        "consentCode": "A1B2C3",
        "locations": [
            {"gln": "", "entryType": 1, "time": (NOW - age).isoformat().replace("+00:00", "Z")}
            for age in ages
        ],
    }


def test_the_cut_keeps_exactly_60_days_and_drops_anything_older() -> None:
    upload = model.parse_diary_upload(
        _diary(timedelta(days=60), timedelta(days=60, seconds=1), timedelta(0)),
        now=NOW,
        rules=DiarySettings(),
    )
    kept = upload.within_retention(NOW, 60)
    assert [e.time for e in kept.entries] == [NOW - timedelta(days=60), NOW]


@pytest.mark.parametrize(
    ("ahead", "accepted"),
    [(timedelta(minutes=5), True), (timedelta(minutes=5, seconds=1), False)],
)
def test_a_time_ahead_of_now_is_accepted_only_within_the_clock_skew(
    ahead: timedelta, accepted: bool
) -> None:
    body = _diary(-ahead)
    if accepted:
        model.parse_diary_upload(body, now=NOW, rules=DiarySettings(clock_skew_seconds=300))
    else:
        with pytest.raises(ValidationError) as caught:
            model.parse_diary_upload(body, now=NOW, rules=DiarySettings(clock_skew_seconds=300))
        assert caught.value.errors == {"Locations[0].Time": ["The time must not be in the future."]}


def test_every_problem_of_a_diary_is_reported_at_once() -> None:
    body = {
        "consentCode": "short",
        "locations": [{"gln": "1", "entryType": 3, "time": "x", "extra": 1}],
    }
    with pytest.raises(ValidationError) as caught:
        model.parse_diary_upload(body, now=NOW, rules=DiarySettings())
    assert set(caught.value.errors) == {
        "ConsentCode",
        "Locations[0].Gln",
        "Locations[0].EntryType",
        "Locations[0].Time",
        "Locations[0].Extra",
    }
