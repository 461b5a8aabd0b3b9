"""The hand-written writer against the protobuf runtime, the reader and the range rules."""

from __future__ import annotations

import random

import pytest

from covidtracer.enffiles.exportfile import (
    DEFAULT_ROLLING_PERIOD,
    EXPORT_HEADER,
    ExportBatch,
    ExportKey,
    ReportType,
    SignatureInfo,
    encode_export_bin,
    encode_signature_list,
)
from tracerstack import export_pb2 as pb
from tracerstack.exportreader import decode_export_bin, decode_signature_list

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
SIGNATURE_INFO = SignatureInfo("v1", "530")


def runtime_export_bin(batch: ExportBatch) -> bytes:
    """What the protobuf runtime writes when the same fields are set as the writer sets."""
    message = pb.TemporaryExposureKeyExport(
        start_timestamp=batch.start_timestamp,
        end_timestamp=batch.end_timestamp,
        region=batch.region,
        batch_num=batch.batch_num,
        batch_size=batch.batch_size,
    )
    for info in batch.signature_infos:
        message.signature_infos.add(
            verification_key_version=info.verification_key_version,
            verification_key_id=info.verification_key_id,
            signature_algorithm=info.signature_algorithm,
        )
    for field, keys in ((message.keys, batch.keys), (message.revised_keys, batch.revised_keys)):
        for key in sorted(keys, key=lambda k: k.key_data):
            record = field.add(
                key_data=key.key_data,
                transmission_risk_level=key.transmission_risk_level,
                rolling_start_interval_number=key.rolling_start_interval_number,
            )
            if key.rolling_period != DEFAULT_ROLLING_PERIOD:
                record.rolling_period = key.rolling_period
            if key.report_type is not None:
                record.report_type = key.report_type
            if key.days_since_onset is not None:
                record.days_since_onset_of_symptoms = key.days_since_onset
    serialized: bytes = message.SerializeToString()
    return EXPORT_HEADER + serialized


def batch_of(keys: tuple[ExportKey, ...], **fields: object) -> ExportBatch:
    values: dict[str, object] = {
        "start_timestamp": 1_600_000_000,
        "end_timestamp": 1_600_086_400,
        "region": "NZ",
        "batch_num": 1,
        "batch_size": 1,
        "signature_infos": (SIGNATURE_INFO,),
        "keys": keys,
    }
    values.update(fields)
    return ExportBatch(**values)  # type: ignore[arg-type]


def random_int32(rng: random.Random, typical: range) -> int:
    """Mostly realistic values, sometimes the extremes where varint lengths change."""
    if rng.random() < 0.8:
        return rng.choice(typical)
    return rng.choice([0, 1, 127, 128, 16383, 16384, INT32_MAX, -1, -128, INT32_MIN])


def random_key(rng: random.Random) -> ExportKey:
    day = rng.randrange(18_400, 18_415) * 144
    return ExportKey(
        key_data=rng.randbytes(16),
        transmission_risk_level=random_int32(rng, range(9)),
        rolling_start_interval_number=random_int32(rng, range(day, day + 144)),
        rolling_period=random_int32(rng, range(1, 145)) if rng.random() < 0.5 else 144,
        report_type=rng.choice([None, *ReportType]),
        days_since_onset=None if rng.random() < 0.3 else random_int32(rng, range(-14, 15)),
    )


@pytest.mark.parametrize("seed", range(30))
def test_hand_encoding_equals_the_protobuf_runtime_for_random_keys(seed: int) -> None:
    rng = random.Random(seed)
    batch = batch_of(
        tuple(random_key(rng) for _ in range(rng.randrange(0, 300))),
        start_timestamp=rng.choice([0, 1_600_000_000, 2**64 - 1]),
        end_timestamp=rng.randrange(2**64),
        region=rng.choice(["", "NZ", "US", "Aotearoa–Māori ✓"]),
        batch_num=random_int32(rng, range(1, 3)),
        batch_size=random_int32(rng, range(1, 3)),
        signature_infos=tuple(
            SignatureInfo(str(n), rng.choice(["", "530", "x" * 200])) for n in range(seed % 3)
        ),
    )

    assert encode_export_bin(batch) == runtime_export_bin(batch)


@pytest.mark.parametrize("seed", range(5))
def test_hand_encoding_equals_the_runtime_when_keys_repeat_field_values(seed: int) -> None:
    rng = random.Random(seed)
    pool = [random_key(rng) for _ in range(8)]
    keys = tuple(rng.choice(pool)._replace(key_data=rng.randbytes(16)) for _ in range(2000))

    assert encode_export_bin(batch_of(keys)) == runtime_export_bin(batch_of(keys))


@pytest.mark.parametrize("seed", range(10))
def test_revised_keys_are_field_8_after_the_keys_as_the_runtime_writes_them(seed: int) -> None:
    rng = random.Random(seed)
    keys = tuple(random_key(rng) for _ in range(rng.randrange(0, 50)))
    revised = tuple(random_key(rng) for _ in range(rng.randrange(1, 20)))
    batch = batch_of(keys, revised_keys=revised)

    assert encode_export_bin(batch) == runtime_export_bin(batch)
    assert decode_export_bin(encode_export_bin(batch)).revised_keys == tuple(
        sorted(revised, key=lambda k: k.key_data)
    )


@pytest.mark.parametrize("seed", range(10))
def test_the_reader_returns_what_the_writer_wrote(seed: int) -> None:
    rng = random.Random(seed)
    keys = tuple(random_key(rng) for _ in range(200))
    batch = batch_of(keys)

    decoded = decode_export_bin(encode_export_bin(batch))

    assert decoded == batch_of(tuple(sorted(keys, key=lambda k: k.key_data)))


@pytest.mark.parametrize(
    ("key", "expected_tail"),
    [
        (ExportKey(b"\x00" * 16, 0, 0), "10001800"),
        (ExportKey(b"\x00" * 16, 8, 2649980), "100818fcdea101"),
        (ExportKey(b"\x00" * 16, 8, 2649980, 144), "100818fcdea101"),
        (ExportKey(b"\x00" * 16, 8, 2649980, 143), "100818fcdea101208f01"),
        (ExportKey(b"\x00" * 16, 1, 1, report_type=ReportType.UNKNOWN), "100118012800"),
        (ExportKey(b"\x00" * 16, 1, 1, report_type=ReportType.CONFIRMED_TEST), "100118012801"),
        (ExportKey(b"\x00" * 16, 1, 1, days_since_onset=0), "100118013000"),
        (ExportKey(b"\x00" * 16, 1, 1, days_since_onset=-1), "100118013001"),
        (ExportKey(b"\x00" * 16, 1, 1, days_since_onset=14), "10011801301c"),
        (ExportKey(b"\x00" * 16, -1, 1), "10ffffffffffffffffff011801"),
    ],
    ids=[
        "zeros-are-written",
        "google-first-key-fields",
        "rolling-period-144-is-omitted",
        "rolling-period-143-is-written",
        "report-type-unknown-is-written-when-set",
        "report-type-confirmed-test",
        "onset-zero-is-written-when-set",
        "onset-minus-one-zigzags-to-1",
        "onset-14-zigzags-to-28",
        "negative-int32-takes-ten-bytes",
    ],
)
def test_key_fields_are_encoded_as_the_runtime_does(key: ExportKey, expected_tail: str) -> None:
    encoded = encode_export_bin(batch_of((key,)))

    assert encoded == runtime_export_bin(batch_of((key,)))
    assert encoded.hex().endswith(expected_tail)


def test_keys_are_written_in_key_byte_order() -> None:
    keys = tuple(ExportKey(bytes([b]) * 16, 1, 2) for b in (0x80, 0x01, 0xFF, 0x00, 0x7F))

    decoded = decode_export_bin(encode_export_bin(batch_of(keys)))

    assert [key.key_data[0] for key in decoded.keys] == [0x00, 0x01, 0x7F, 0x80, 0xFF]


def test_a_batch_without_keys_is_a_valid_export() -> None:
    batch = batch_of(())

    assert encode_export_bin(batch) == runtime_export_bin(batch)
    assert decode_export_bin(encode_export_bin(batch)).keys == ()


@pytest.mark.parametrize(
    ("batch_fields", "key"),
    [
        ({}, ExportKey(b"\x00" * 15, 1, 1)),
        ({}, ExportKey(b"\x00" * 17, 1, 1)),
        ({}, ExportKey(b"\x00" * 16, INT32_MAX + 1, 1)),
        ({}, ExportKey(b"\x00" * 16, 1, INT32_MIN - 1)),
        ({}, ExportKey(b"\x00" * 16, 1, 1, rolling_period=2**31)),
        ({}, ExportKey(b"\x00" * 16, 1, 1, report_type=6)),
        ({}, ExportKey(b"\x00" * 16, 1, 1, report_type=-1)),
        ({}, ExportKey(b"\x00" * 16, 1, 1, days_since_onset=INT32_MAX + 1)),
        ({"start_timestamp": -1}, ExportKey(b"\x00" * 16, 1, 1)),
        ({"end_timestamp": 2**64}, ExportKey(b"\x00" * 16, 1, 1)),
        ({"batch_num": INT32_MAX + 1}, ExportKey(b"\x00" * 16, 1, 1)),
    ],
    ids=[
        "short-key",
        "long-key",
        "risk-above-int32",
        "start-interval-below-int32",
        "rolling-period-above-int32",
        "report-type-not-in-the-enum",
        "negative-report-type",
        "onset-above-int32",
        "negative-timestamp",
        "timestamp-above-uint64",
        "batch-num-above-int32",
    ],
)
def test_the_writer_refuses_what_the_runtime_would_refuse(
    batch_fields: dict[str, object], key: ExportKey
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by field
        encode_export_bin(batch_of((key,), **batch_fields))


@pytest.mark.parametrize("signature", [b"", b"\x30\x45" + b"\x01" * 69, b"\xff" * 300])
def test_signature_list_encoding_equals_the_runtime(signature: bytes) -> None:
    expected = pb.TEKSignatureList()
    expected.signatures.add(
        signature_info=pb.SignatureInfo(
            verification_key_version="v1",
            verification_key_id="530",
            signature_algorithm="1.2.840.10045.4.3.2",
        ),
        batch_num=1,
        batch_size=1,
        signature=signature,
    )

    encoded = encode_signature_list(SIGNATURE_INFO, 1, 1, signature)

    assert encoded == bytes(expected.SerializeToString())
    assert decode_signature_list(encoded)[0].signature == signature
