"""Diary uploads (DESIGN §2.3) through the use case with in-memory twins: every field rule
(moved from the HTTP tier; one HTTP test per error shape stays in services/details/tests),
what reaches NCTS, and the consent-code guess limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from covidtracer.diary import service
from covidtracer.diary.settings import DiarySettings
from covidtracer.errors import TooManyRequests, Unavailable, ValidationError
from covidtracer.ratelimit.repository import MemoryCounters
from tracerstack.details_fakes import MISSING, RecordingNcts, diary_entry, iso_millis

NOW = datetime(2021, 10, 5, 12, 0, 0, 250_000, tzinfo=UTC)  # as phones send: milliseconds
CODE = "A1B2C3"
_MISSING = MISSING


def _entry(**overrides: Any) -> dict[str, Any]:
    return diary_entry(NOW, **overrides)


def _deps(rules: DiarySettings | None = None, issued: tuple[str, ...] = (CODE,)) -> Any:
    return service.Dependencies(
        counters=MemoryCounters(),
        ncts=RecordingNcts(issued),
        rules=rules or DiarySettings(),
        stage="test",
    )


def _upload(deps: Any, body: Any, source_ip: str = "203.0.113.7") -> int:
    return service.upload_diary(deps, service.DiaryUploadRequest(body, source_ip), NOW)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"locations": [_entry()]}, "ConsentCode"),
        ({"consentCode": "A1B2C", "locations": [_entry()]}, "ConsentCode"),
        ({"consentCode": "A1B2C3D", "locations": [_entry()]}, "ConsentCode"),
        ({"consentCode": "A1B2C!", "locations": [_entry()]}, "ConsentCode"),
        ({"consentCode": 123456, "locations": [_entry()]}, "ConsentCode"),
        ({"consentCode": CODE}, "Locations"),
        ({"consentCode": CODE, "locations": []}, "Locations"),
        ({"consentCode": CODE, "locations": {"0": _entry()}}, "Locations"),
        ({"consentCode": CODE, "locations": ["x"]}, "Locations[0]"),
        ({"consentCode": CODE, "locations": [_entry(entryType=2)]}, "Locations[0].EntryType"),
        ({"consentCode": CODE, "locations": [_entry(entryType="0")]}, "Locations[0].EntryType"),
        ({"consentCode": CODE, "locations": [_entry(entryType=True)]}, "Locations[0].EntryType"),
        ({"consentCode": CODE, "locations": [_entry(entryType=_MISSING)]},
         "Locations[0].EntryType"),
        ({"consentCode": CODE, "locations": [_entry(), _entry(gln="94293")]}, "Locations[1].Gln"),
        ({"consentCode": CODE, "locations": [_entry(gln="94293000000ab")]}, "Locations[0].Gln"),
        ({"consentCode": CODE, "locations": [_entry(note="n" * 256)]}, "Locations[0].Note"),
        ({"consentCode": CODE, "locations": [_entry(time="2021-10-04 21:05:12")]},
         "Locations[0].Time"),
        ({"consentCode": CODE, "locations": [_entry(time="2021-10-04T21:05:12+13:00")]},
         "Locations[0].Time"),
        ({"consentCode": CODE, "locations": [_entry(time=_MISSING)]}, "Locations[0].Time"),
        ({"consentCode": CODE, "locations": [_entry(time=iso_millis(NOW + timedelta(hours=1)))]},
         "Locations[0].Time"),
        ({"consentCode": CODE, "locations": [_entry(venue="x")]}, "Locations[0].Venue"),
        ({"consentCode": CODE, "locations": [_entry()], "userId": "u"}, "UserId"),
        # Control characters and look-alike digits (issue 11, 7).
        ({"consentCode": CODE, "locations": [_entry(locationName="Cafe\u0000")]},
         "Locations[0].LocationName"),
        ({"consentCode": CODE, "locations": [_entry(note="with\u0000Sam")]}, "Locations[0].Note"),
        ({"consentCode": CODE, "locations": [_entry(gln="9429300000000\n")]}, "Locations[0].Gln"),
        ({"consentCode": CODE, "locations": [_entry(gln="٩٤٢٩٣٠٠٠٠٠٠٠٠")]}, "Locations[0].Gln"),
    ],
)  # fmt: skip
def test_each_rule_is_a_validation_error_naming_the_field_and_nothing_reaches_ncts(
    body: dict[str, Any], key: str
) -> None:
    deps = _deps()
    with pytest.raises(ValidationError) as caught:
        _upload(deps, body)
    assert key in caught.value.errors, caught.value.errors
    assert deps.ncts.diaries == []


@pytest.mark.parametrize(
    "entry",
    [
        _entry(gln="", entryType=1, note="n" * 255),  # a manual entry, a note of 255
        _entry(note="with Sam\nand Ana\tinside"),  # a multi-line note
    ],
)
def test_a_valid_entry_reaches_ncts_as_sent(entry: dict[str, Any]) -> None:
    deps = _deps()
    assert _upload(deps, {"consentCode": CODE, "locations": [entry]}) == 1
    assert deps.ncts.diaries == [(CODE, [entry])]


def test_a_heavy_users_whole_60_day_diary_reaches_ncts_without_loss() -> None:
    """Apps 3.0.0-6.0.0 send the whole 60-day diary in one request (CLIENTS.md)."""
    step = timedelta(days=59) / 10_000
    diary = [
        _entry(gln=f"94293{n:08d}", locationName=f"Place number {n} on Lambton Quay",
               note="with the team" if n % 3 else "", entryType=n % 2,
               time=iso_millis(NOW - timedelta(minutes=5) - step * n))
        for n in range(10_000)
    ]  # fmt: skip
    deps = _deps()
    assert _upload(deps, {"consentCode": CODE, "locations": diary}) == 10_000
    assert deps.ncts.diaries == [(CODE, diary)]


# ---------------------------------------------------------------------- guesses (issue 11, 5)

GUESSES = DiarySettings(guesses_per_ip=4)


def test_consent_code_guesses_are_limited_and_refused_ones_never_reach_ncts() -> None:
    deps = _deps(GUESSES)
    outcomes: list[Any] = []
    for i in range(4 + 5):
        try:
            _upload(deps, {"consentCode": f"ZZ{i:04d}", "locations": [_entry()]})
        except (ValidationError, TooManyRequests) as error:
            outcomes.append(error.status)
    assert deps.ncts.diaries == []
    assert outcomes == [400] * 4 + [429] * 5
    # Refused before forwarding: even a code NCTS issued is not sent on from this address.
    with pytest.raises(TooManyRequests):
        _upload(deps, {"consentCode": CODE, "locations": [_entry()]})
    assert deps.ncts.diaries == []
    # Another address is not held back.
    assert _upload(deps, {"consentCode": CODE, "locations": [_entry()]}, "198.51.100.1") == 1


def test_a_genuine_diary_is_not_counted_as_a_guess() -> None:
    deps = _deps(GUESSES)
    for _ in range(4 + 2):
        assert _upload(deps, {"consentCode": CODE, "locations": [_entry()]}) == 1


def test_diary_uploads_answered_503_are_not_counted_as_guesses() -> None:
    deps = _deps(GUESSES)
    deps.ncts.down = True
    for i in range(4 + 2):
        with pytest.raises(Unavailable):
            _upload(deps, {"consentCode": f"YY{i:04d}", "locations": [_entry()]})
    deps.ncts.down = False
    assert _upload(deps, {"consentCode": CODE, "locations": [_entry()]}) == 1


def test_guesses_in_all_refuse_nobody_and_tighten_every_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 19 changed this test: guesses in all used to refuse every diary in the country
    once used up. Now they are a signal (a metric, which an alarm watches) that tightens
    what a guesser controls: each address's allowance."""
    deps = _deps(DiarySettings(guesses_global=2, guesses_per_ip=4, guesses_per_ip_guarded=1))
    for address in ("203.0.113.1", "203.0.113.2"):
        with pytest.raises(ValidationError):
            _upload(deps, {"consentCode": "ZZ0000", "locations": [_entry()]}, address)
    # Every address may still send a genuine diary ...
    assert _upload(deps, {"consentCode": CODE, "locations": [_entry()]}, "203.0.113.3") == 1
    # ... and while guessing goes on, each may guess once an hour instead of four times.
    with pytest.raises(ValidationError):
        _upload(deps, {"consentCode": "ZZ0001", "locations": [_entry()]}, "203.0.113.4")
    with pytest.raises(TooManyRequests):
        _upload(deps, {"consentCode": "ZZ0002", "locations": [_entry()]}, "203.0.113.4")
    metrics = [
        line for line in capsys.readouterr().out.splitlines() if "DiaryConsentCodeGuesses" in line
    ]
    assert len(metrics) == 3 and all('"_aws"' in line for line in metrics)
