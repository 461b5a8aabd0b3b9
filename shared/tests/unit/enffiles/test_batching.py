"""The per-file split rule."""

from __future__ import annotations

import pytest

from covidtracer.enffiles.batching import split_batch
from covidtracer.enffiles.exportfile import ExportBatch, ExportKey, SignatureInfo

START, END = 1_600_000_000, 1_600_086_400


def keys(count: int) -> tuple[ExportKey, ...]:
    return tuple(
        ExportKey(n.to_bytes(16, "big"), n % 9, 2_650_000 + 144 * (n % 3), 144, 1, n % 5)
        for n in range(count)
    )


def batch(count: int) -> ExportBatch:
    return ExportBatch(START, END, "NZ", 1, 1, (SignatureInfo("v1", "530"),), keys(count))


@pytest.mark.parametrize(
    ("count", "max_per_file", "sizes", "end_timestamps"),
    [
        (0, 3, [], []),
        (1, 3, [1], [END]),
        (3, 3, [3], [END]),
        (4, 3, [3, 1], [END + 1, END + 2]),
        (7, 3, [3, 3, 1], [END + 1, END + 2, END + 3]),
        (9, 3, [3, 3, 3], [END + 1, END + 2, END + 3]),
        (14, 5, [5, 5, 4], [END + 1, END + 2, END + 3]),
    ],
)
def test_split_files_hold_at_most_the_maximum_and_bump_end_by_file_number(
    count: int, max_per_file: int, sizes: list[int], end_timestamps: list[int]
) -> None:
    files = split_batch(batch(count), max_per_file)

    assert [len(f.keys) for f in files] == sizes
    assert [f.end_timestamp for f in files] == end_timestamps
    assert all(f.start_timestamp == START for f in files)
    assert all((f.batch_num, f.batch_size) == (1, 1) for f in files)
    assert tuple(key for f in files for key in f.keys) == keys(count)


def test_a_day_of_1_4_million_keys_makes_three_files() -> None:
    many = ExportBatch(START, END, "NZ", 1, 1, (), keys(1) * 1_400_000)

    files = split_batch(many)

    assert [len(f.keys) for f in files] == [500_000, 500_000, 400_000]
    assert [f.end_timestamp for f in files] == [END + 1, END + 2, END + 3]


def test_a_single_file_is_forced_to_batch_one_of_one() -> None:
    wrong = ExportBatch(START, END, "NZ", 2, 5, (), keys(3))

    assert [(f.batch_num, f.batch_size) for f in split_batch(wrong)] == [(1, 1)]


def test_splitting_needs_room_for_at_least_one_key() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_batch(batch(3), 0)
