"""The per-file split rule and deterministic fake-key padding."""

from __future__ import annotations

import pytest

from covidtracer.enffiles.batching import pad_keys, split_batch
from covidtracer.enffiles.exportfile import ExportBatch, ExportKey, SignatureInfo, encode_export_bin

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


def test_padding_with_the_same_seed_gives_the_same_export_bin() -> None:
    real = keys(10)
    padded_once = pad_keys(real, seed=b"secret/NZ/1600000000")
    padded_again = pad_keys(real, seed=b"secret/NZ/1600000000")

    assert padded_once == padded_again
    assert encode_export_bin(ExportBatch(START, END, "NZ", 1, 1, (), padded_once)) == (
        encode_export_bin(ExportBatch(START, END, "NZ", 1, 1, (), padded_again))
    )


def test_padding_with_another_seed_gives_other_fake_keys() -> None:
    real = keys(10)

    assert pad_keys(real, seed=b"a")[10:] != pad_keys(real, seed=b"b")[10:]


@pytest.mark.parametrize("seed", [b"", b"a", b"b", b"c", b"\x00" * 32])
def test_padding_reaches_the_minimum_plus_a_jitter_within_range(seed: bytes) -> None:
    padded = pad_keys(keys(10), seed=seed)

    assert 1000 <= len(padded) <= 1100


def test_padding_jitter_varies_with_the_seed() -> None:
    sizes = {len(pad_keys(keys(1), seed=bytes([n]))) for n in range(20)}

    assert len(sizes) > 1


def test_fake_keys_are_new_16_byte_keys_that_copy_a_real_keys_other_fields() -> None:
    real = keys(10)
    padded = pad_keys(real, seed=b"s", minimum=500, jitter=0)

    assert len(padded) == 500
    assert padded[:10] == real
    assert len({key.key_data for key in padded}) == 500
    assert all(len(key.key_data) == 16 for key in padded)
    real_fields = {key[1:] for key in real}
    assert all(fake[1:] in real_fields for fake in padded[10:])


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, 0), (1000, 1000), (1200, 1200)],
    ids=["empty-stays-empty", "at-the-minimum-with-zero-jitter", "above-the-target"],
)
def test_padding_leaves_empty_and_large_enough_files_alone(count: int, expected: int) -> None:
    assert len(pad_keys(keys(count), seed=b"s", minimum=1000, jitter=0)) == expected


@pytest.mark.parametrize(("minimum", "jitter"), [(-1, 0), (0, -1)])
def test_padding_refuses_negative_limits(minimum: int, jitter: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        pad_keys(keys(1), seed=b"s", minimum=minimum, jitter=jitter)
