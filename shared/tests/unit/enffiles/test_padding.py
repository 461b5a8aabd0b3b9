"""The day's fake uploads (``padding``): a schedule of the secret and the day alone, carried
from file to file, shaped like the real uploads of the days before, merged in key order."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from covidtracer.enffiles import padding
from covidtracer.enffiles.exportfile import KEY_LENGTH, NO_ONSET, PACKED_KEY
from covidtracer.enffiles.model import DAILY, DELTA, Window

DAY = 86_400
D = 18_914  # 2021-10-14
HOUR = 3600


def _sample(**fields: int) -> list[padding.SampledKey]:
    """Real uploads of the days before ``D``: one key per day -5..7 since an onset 4 days
    before the upload, with ``fields`` (transmission risk, report type …) overridden."""
    keys = []
    for created in range(D - 7, D):
        for key_day in range(created - 14, created):
            dso = key_day - (created - 4)
            if -5 <= dso <= 7:
                key = padding.SampledKey(created, key_day, 0, 144, 3, 2, dso)
                keys.append(replace(key, **fields))
    return keys


def _plan(
    sample: list[padding.SampledKey] | None = None, secret: bytes = b"s", window: int = HOUR
) -> tuple[padding.Padding, list[int]]:
    asked: list[int] = []

    def read(day: int, start: bytes, limit: int) -> list[padding.SampledKey]:
        asked.append(day)
        return [k for k in (sample or []) if k.created_day == day][:limit]

    windows = [Window(D * DAY, D * DAY + DAY, DAILY)]
    return padding.plan(read, secret, "NZ", windows, window), asked


def _deltas(plan: padding.Padding) -> list[set[bytes]]:
    """Each hourly delta's fakes and the daily's."""
    return [
        set(plan.rows(Window(D * DAY, D * DAY + hours * HOUR, DELTA if hours < 24 else DAILY)))
        for hours in range(1, 25)
    ]


def _fields(row: bytes) -> tuple[int, ...]:
    return tuple(PACKED_KEY.unpack(row)[1:])


def test_a_day_s_fakes_are_carried_from_each_file_to_the_next_and_every_window_adds_some() -> None:
    files = _deltas(_plan(_sample())[0])
    for earlier, later in itertools.pairwise(files):
        assert earlier < later  # nothing goes, something comes


def test_the_day_starts_with_googles_1000_plus_a_jitter_of_up_to_100() -> None:
    floors = set()
    for day in range(D, D + 12):
        plan = padding.plan(
            lambda *_: [], b"s", "NZ", [Window(day * DAY, day * DAY + DAY, DAILY)], HOUR
        )
        at_midnight = plan.rows(Window(day * DAY, day * DAY + 1, DELTA))
        assert 1000 <= len(at_midnight) <= 1100
        floors.add(len(at_midnight))
    assert len(floors) > 1


def test_fakes_are_a_function_of_the_secret_and_the_day_and_read_only_earlier_days() -> None:
    plan, asked = _plan(_sample())
    again, _ = _plan(_sample())
    other, _ = _plan(_sample(), secret=b"other")
    assert plan.rows(Window(D * DAY, D * DAY + DAY, DAILY)) == again.rows(
        Window(D * DAY, D * DAY + DAY, DAILY)
    )
    assert not set(plan.rows(Window(D * DAY, D * DAY + DAY, DAILY))) & set(
        other.rows(Window(D * DAY, D * DAY + DAY, DAILY))
    )
    assert asked and max(asked) < D  # no key of the day itself shapes its fakes
    assert len(set(asked)) == len(asked)  # each day's sample read once


def test_fakes_copy_the_fields_of_real_keys_with_the_same_days_since_onset() -> None:
    fakes = [_fields(r) for r in _plan(_sample())[0].rows(Window(D * DAY, D * DAY + DAY, DAILY))]
    risks, starts, periods, report_types, onsets = zip(*fakes, strict=True)
    assert set(risks) == {3} and set(report_types) == {2} and set(periods) == {144}
    assert {s % 144 for s in starts} == {0}
    assert set(onsets) <= set(range(-5, 8))


def test_a_fake_upload_is_one_key_per_day_in_a_row_sharing_onset_and_report_type() -> None:
    """The keys new in a window (its fake uploads, 4 days after onset like the sample's):
    by onset, each day of the upload's range has one key per upload, none is missing."""
    plan = _plan(_sample())[0]
    new = set(plan.rows(Window(D * DAY, D * DAY + 5 * HOUR, DELTA)))
    new -= set(plan.rows(Window(D * DAY, D * DAY + 4 * HOUR, DELTA)))
    per_day: dict[tuple[int, int], list[int]] = {}
    for row in new:
        _, _, start, _, report_type, dso = PACKED_KEY.unpack(row)
        per_day.setdefault((start // 144 - dso, report_type), []).append(start // 144)
    assert list(per_day) == [(D - 4, 2)]
    ((_, days),) = per_day.items()
    counts = {day: days.count(day) for day in days}
    assert sorted(counts) == list(range(D - 9, D))  # days -5..4 since onset, in a row
    assert len(set(counts.values())) == 1 and 1 <= counts[D - 1] <= 3  # 1-3 uploads


def test_same_day_keys_come_as_often_as_real_uploads_carry_them_released_by_the_embargo() -> None:
    never = _plan(_sample())[0].rows(Window(D * DAY, D * DAY + DAY, DAILY))
    assert all(PACKED_KEY.unpack(r)[2] // 144 < D for r in never)
    sample = _sample()
    sample += [padding.SampledKey(k.created_day, k.created_day, 0, 60, 3, 2, k.days_since_onset + 1)
               for k in sample if k.key_day == k.created_day - 1]  # fmt: skip
    plan = _plan(sample)[0]
    daily = plan.rows(Window(D * DAY, D * DAY + DAY, DAILY))
    same_day = [PACKED_KEY.unpack(r) for r in daily if PACKED_KEY.unpack(r)[2] // 144 == D]
    assert same_day
    for _, _, start, period, _, _ in same_day:  # cut at its upload, out 2 h after
        release = (start + period) * 600 + 2 * HOUR
        assert period < 144 and D * DAY <= release < D * DAY + DAY


def test_without_real_keys_before_the_day_fakes_take_the_built_in_shape() -> None:
    fakes = [_fields(r) for r in _plan()[0].rows(Window(D * DAY, D * DAY + DAY, DAILY))]
    assert {(risk, start % 144, period, report) for risk, start, period, report, _ in fakes} == {
        (0, 0, 144, 1)
    }
    assert all(-5 <= dso <= 10 and dso != NO_ONSET for *_, dso in fakes)


@pytest.mark.parametrize("page_rows", [1, 7, 100, 1000])
def test_merging_keeps_key_order_and_every_key_once(page_rows: int) -> None:
    rng = random.Random(page_rows)
    real = sorted(PACKED_KEY.pack(rng.randbytes(16), 0, 1, 144, 1, 0) for _ in range(2000))
    fakes = sorted(PACKED_KEY.pack(rng.randbytes(16), 0, 2, 144, 1, 0) for _ in range(300))
    merger = padding.Merger(list(fakes))
    out: list[tuple[bytes, bool]] = []
    for at in range(0, len(real), page_rows):
        page = b"".join(real[at : at + page_rows])
        out += [(bytes(rows), fake) for rows, fake in merger.merged(page)]
    out += [(bytes(rows), fake) for rows, fake in merger.rest()]
    joined = b"".join(rows for rows, _ in out)
    rows = [joined[i : i + PACKED_KEY.size] for i in range(0, len(joined), PACKED_KEY.size)]
    assert rows == sorted(real + fakes)
    assert sum(len(r) for r, fake in out if fake) == 300 * PACKED_KEY.size
    assert all(len(r) % PACKED_KEY.size == 0 and len(r[:KEY_LENGTH]) for r, _ in out)
