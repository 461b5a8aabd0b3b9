"""Golden tests against Google's example export file."""

from __future__ import annotations

import base64

import pytest

from covidtracer.enffiles.exportfile import (
    EXPORT_HEADER,
    ExportBatch,
    ExportKey,
    SignatureInfo,
    encode_export_bin,
    encode_signature_list,
)
from covidtracer.enffiles.signing import verify_signature
from tracerstack.exportreader import read_export_zip, unzip_export

GOOGLE_SIGNATURE_INFO = SignatureInfo(
    verification_key_version="1",
    verification_key_id="some_id",
    signature_algorithm="1.2.840.10045.4.3.2",
)
# As vectors/README.md gives them, in the order they were uploaded (not key order).
GOOGLE_KEYS = (
    ExportKey(base64.b64decode("Fy/EgOWYSQw0F3YEM5sVQw=="), 8, 2649980, 1),
    ExportKey(base64.b64decode("K2MFOsSDI43hdhaehh89zQ=="), 1, 2649866, 114),
)


def test_the_reader_decodes_googles_example_file(google_export_zip: bytes) -> None:
    batch, signatures = read_export_zip(google_export_zip)

    assert batch.start_timestamp == 1590159600
    assert batch.end_timestamp == 1590246000
    assert batch.region == "US"
    assert (batch.batch_num, batch.batch_size) == (1, 1)
    assert batch.signature_infos == (GOOGLE_SIGNATURE_INFO,)
    assert batch.keys == GOOGLE_KEYS
    assert [(s.signature_info, s.batch_num, s.batch_size) for s in signatures] == [
        (GOOGLE_SIGNATURE_INFO, 1, 1)
    ]


def test_googles_example_keys_carry_no_report_type_or_onset(google_export_zip: bytes) -> None:
    batch, _ = read_export_zip(google_export_zip)

    assert all(key.report_type is None and key.days_since_onset is None for key in batch.keys)


def test_googles_signature_verifies_with_the_shipped_public_key(
    google_export_zip: bytes, google_public_key_pem: bytes
) -> None:
    export_bin, _ = unzip_export(google_export_zip)
    _, signatures = read_export_zip(google_export_zip)

    assert export_bin.startswith(EXPORT_HEADER)
    assert verify_signature(export_bin, signatures[0].signature, google_public_key_pem)


@pytest.mark.parametrize(
    "position",
    [0, 15, 16, 60, -1],
    ids=["header-first", "header-last", "first-field", "middle", "last-byte"],
)
def test_a_one_byte_change_fails_verification(
    google_export_zip: bytes, google_public_key_pem: bytes, position: int
) -> None:
    export_bin, _ = unzip_export(google_export_zip)
    _, signatures = read_export_zip(google_export_zip)
    tampered = bytearray(export_bin)
    tampered[position] ^= 0x01

    assert not verify_signature(bytes(tampered), signatures[0].signature, google_public_key_pem)


def test_the_writer_reproduces_googles_export_bin_byte_for_byte(google_export_zip: bytes) -> None:
    export_bin, _ = unzip_export(google_export_zip)
    batch = ExportBatch.one_of_one(1590159600, 1590246000, "US", GOOGLE_SIGNATURE_INFO, GOOGLE_KEYS)

    assert encode_export_bin(batch) == export_bin


def test_the_writer_reproduces_googles_export_sig_from_its_signature(
    google_export_zip: bytes,
) -> None:
    _, export_sig = unzip_export(google_export_zip)
    _, signatures = read_export_zip(google_export_zip)

    encoded = encode_signature_list(GOOGLE_SIGNATURE_INFO, 1, 1, signatures[0].signature)

    assert encoded == export_sig
