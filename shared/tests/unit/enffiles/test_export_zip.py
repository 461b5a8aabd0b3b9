"""The export zip: deterministic bytes, the entries phones expect, and clear reader errors."""

from __future__ import annotations

import io
import zipfile

import pytest
from export_samples import BATCH, EXPORT_BIN, SIGNATURE_INFO

from covidtracer.enffiles.exportfile import (
    EXPORT_HEADER,
    build_zip,
    encode_signature_list,
)
from tracerstack.exportreader import (
    ExportFormatError,
    decode_export_bin,
    decode_signature_list,
    read_export_zip,
    unzip_export,
)

SIGNATURE_DER = b"\x30\x06\x02\x01\x01\x02\x01\x01"
EXPORT_SIG = encode_signature_list(SIGNATURE_INFO, 1, 1, SIGNATURE_DER)


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_building_the_same_zip_twice_gives_identical_bytes() -> None:
    assert build_zip(EXPORT_BIN, EXPORT_SIG) == build_zip(EXPORT_BIN, EXPORT_SIG)


def test_the_zip_holds_export_bin_then_export_sig_deflated_with_fixed_times() -> None:
    with zipfile.ZipFile(io.BytesIO(build_zip(EXPORT_BIN, EXPORT_SIG))) as archive:
        entries = archive.infolist()
        contents = [archive.read(entry) for entry in entries]

    assert [entry.filename for entry in entries] == ["export.bin", "export.sig"]
    assert all(entry.compress_type == zipfile.ZIP_DEFLATED for entry in entries)
    assert all(entry.date_time == (1980, 1, 1, 0, 0, 0) for entry in entries)
    assert contents == [EXPORT_BIN, EXPORT_SIG]


def test_the_reader_reads_back_what_was_zipped() -> None:
    batch, signatures = read_export_zip(build_zip(EXPORT_BIN, EXPORT_SIG))

    assert batch == BATCH
    assert signatures == decode_signature_list(EXPORT_SIG)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a readable export zip"),
        (b"PK\x03\x04 truncated", "not a readable export zip"),
        (zip_of({"export.sig": EXPORT_SIG}), "no export.bin"),
        (zip_of({"export.bin": EXPORT_BIN}), "no export.sig"),
        (zip_of({"export.bin": b"EK Export v2    ", "export.sig": EXPORT_SIG}), "must start"),
        (zip_of({"export.bin": EXPORT_HEADER + b"\xff\xff", "export.sig": b""}), "is not a"),
        (zip_of({"export.bin": EXPORT_HEADER + b"\x1a\x02NZ", "export.sig": b""}), "lacks"),
        (zip_of({"export.bin": EXPORT_BIN, "export.sig": b"\x0a\x05\x01"}), "is not a"),
    ],
    ids=[
        "empty-input",
        "truncated-zip",
        "missing-export-bin",
        "missing-export-sig",
        "wrong-header",
        "export-bin-not-protobuf",
        "export-bin-without-timestamps",
        "export-sig-not-protobuf",
    ],
)
def test_the_reader_rejects_malformed_input_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(ExportFormatError, match=message) as raised:
        read_export_zip(data)

    assert isinstance(raised.value, ValueError)


def test_the_reader_refuses_an_entry_that_would_inflate_too_far(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tracerstack.exportreader.MAX_ENTRY_BYTES", len(EXPORT_BIN) - 1)

    with pytest.raises(ExportFormatError, match="would inflate"):
        unzip_export(build_zip(EXPORT_BIN, EXPORT_SIG))


def test_decoding_export_bin_does_not_need_the_zip() -> None:
    assert decode_export_bin(EXPORT_BIN) == BATCH
