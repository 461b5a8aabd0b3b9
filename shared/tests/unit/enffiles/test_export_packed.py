"""The export run's packed-row writer against `encode_export_bin` and the protobuf runtime.

Keys range over everything the ``exposures`` columns can hold: smallint risk and report
type (the enum's values; others must be refused as `encode_export_bin` refuses them),
integer start interval and rolling period, smallint or NULL days since onset.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from test_export_encoding import batch_of, runtime_export_bin

from covidtracer.enffiles.exportfile import (
    NO_ONSET,
    PACKED_KEY,
    ExportKey,
    PackedExportBin,
    ReportType,
    encode_export_bin,
    encode_packed_export_bin,
)
from tracerstack.exportreader import unpack_keys

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT16_EDGES = [INT16_MIN, -129, -128, -1, 0, 1, 63, 64, 127, 128, INT16_MAX]
INT32_EDGES = [INT32_MIN, -1, 0, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**28, INT32_MAX]


def pack(keys: list[ExportKey]) -> bytes:
    """What export_db.packed_keys returns for these keys: rows in key order."""
    return b"".join(
        PACKED_KEY.pack(
            k.key_data,
            k.transmission_risk_level,
            k.rolling_start_interval_number,
            k.rolling_period,
            k.report_type if k.report_type is not None else 1,
            NO_ONSET if k.days_since_onset is None else k.days_since_onset,
        )
        for k in sorted(keys, key=lambda k: k.key_data)
    )


def db_value(rng: random.Random, typical: range, edges: list[int], low: int, high: int) -> int:
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(typical)
    if roll < 0.8:
        return rng.choice(edges)
    return rng.randint(low, high)


def random_db_key(rng: random.Random) -> ExportKey:
    day = rng.randrange(18_400, 18_415) * 144
    return ExportKey(
        key_data=rng.randbytes(16),
        transmission_risk_level=db_value(rng, range(9), INT16_EDGES, INT16_MIN, INT16_MAX),
        rolling_start_interval_number=db_value(
            rng, range(day, day + 144), INT32_EDGES, INT32_MIN, INT32_MAX
        ),
        rolling_period=db_value(rng, range(144, 145), INT32_EDGES, INT32_MIN, INT32_MAX),
        report_type=rng.choice(list(ReportType)),
        days_since_onset=(
            None
            if rng.random() < 0.3
            else db_value(rng, range(-14, 15), INT16_EDGES, INT16_MIN, INT16_MAX)
        ),
    )


@pytest.mark.parametrize("seed", range(30))
def test_packed_rows_encode_exactly_as_the_key_writer_and_the_runtime(seed: int) -> None:
    rng = random.Random(seed)
    pool = [random_db_key(rng) for _ in range(rng.randrange(1, 40))]
    keys = [
        rng.choice(pool)._replace(key_data=rng.randbytes(16)) for _ in range(rng.randrange(0, 1500))
    ]
    batch = batch_of(tuple(keys))

    packed = encode_packed_export_bin(batch_of(()), pack(keys))

    assert packed == encode_export_bin(batch)
    assert packed == runtime_export_bin(batch)


@pytest.mark.parametrize("seed", range(5))
def test_packed_revised_rows_encode_as_the_runtime_writes_revised_keys(seed: int) -> None:
    rng = random.Random(seed)
    keys = [random_db_key(rng) for _ in range(rng.randrange(0, 30))]
    revised = [random_db_key(rng) for _ in range(rng.randrange(1, 30))]
    writer = PackedExportBin(batch_of(()))
    writer.append(pack(sorted(keys, key=lambda k: k.key_data)))
    writer.append_revised(pack(sorted(revised, key=lambda k: k.key_data)))

    expected = batch_of(tuple(keys), revised_keys=tuple(revised))
    assert bytes(writer.finish()) == runtime_export_bin(expected)


def test_packed_rows_take_a_memoryview_slice() -> None:
    keys = [ExportKey(bytes([n]) * 16, 4, 2_650_000, 144, 1, -2) for n in range(10)]
    rows = memoryview(pack(keys))[3 * PACKED_KEY.size : 7 * PACKED_KEY.size]

    assert encode_packed_export_bin(batch_of(()), rows) == encode_export_bin(
        batch_of(tuple(keys[3:7]))
    )


@pytest.mark.parametrize("report_type", [-1, 6, INT16_MAX, INT16_MIN])
def test_a_report_type_outside_the_enum_is_refused(report_type: int) -> None:
    row = PACKED_KEY.pack(b"\x01" * 16, 4, 2_650_000, 144, report_type, NO_ONSET)

    with pytest.raises(ValueError):  # noqa: PT011 - the enum's own message
        encode_packed_export_bin(batch_of(()), row)


def test_partial_rows_and_keys_in_the_batch_are_refused() -> None:
    row = pack([ExportKey(b"\x01" * 16, 4, 2_650_000, 144, 1, None)])
    with pytest.raises(ValueError, match="whole"):
        encode_packed_export_bin(batch_of(()), row[:-1])
    with pytest.raises(ValueError, match="packed"):
        encode_packed_export_bin(batch_of((ExportKey(b"\x01" * 16, 1, 1),)), row)


@pytest.mark.parametrize("seed", range(10))
def test_rows_appended_page_by_page_encode_as_one_file_with_the_end_timestamp_given_last(
    seed: int,
) -> None:
    rng = random.Random(seed)
    pool = [random_db_key(rng) for _ in range(rng.randrange(1, 10))]
    keys = sorted(
        (rng.choice(pool)._replace(key_data=rng.randbytes(16)) for _ in range(500)),
        key=lambda k: k.key_data,
    )
    rows = pack(keys)
    writer = PackedExportBin(batch_of(()))
    cuts = sorted(rng.sample(range(1, len(keys)), 5))
    for start, stop in zip([0, *cuts], [*cuts, len(keys)], strict=True):
        writer.append(memoryview(rows)[start * PACKED_KEY.size : stop * PACKED_KEY.size])
    bumped = replace(batch_of(tuple(keys)), end_timestamp=batch_of(()).end_timestamp + 3)

    assert writer.keys == len(keys)
    assert writer.finish(bumped.end_timestamp) == encode_export_bin(bumped)


def test_unpacked_rows_are_the_keys_that_were_packed() -> None:
    keys = [
        ExportKey(bytes([n]) * 16, n % 9, 2_650_000 + n, 144 - n, 1, None if n % 2 else -n)
        for n in range(20)
    ]
    assert unpack_keys(pack(keys)) == keys
