"""Reads export zips with the protobuf runtime: an independent check of the hand-written writer.

Used by tests, tools and anyone verifying a published file; not on the export hot path.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from google.protobuf.message import DecodeError

from covidtracer.enffiles.exportfile import (
    EXPORT_BIN_NAME,
    EXPORT_HEADER,
    EXPORT_SIG_NAME,
    NO_ONSET,
    PACKED_KEY,
    ExportBatch,
    ExportKey,
    ExportSignature,
    SignatureInfo,
)
from tracerstack import export_pb2 as pb

MAX_ENTRY_BYTES = 64 * 1024 * 1024
"""Refuse entries that would inflate beyond this (a 500,000-key export.bin is ~15 MiB)."""

# The header fields, named alike in the proto and in ``ExportBatch``.
_REQUIRED_EXPORT_FIELDS = ("start_timestamp", "end_timestamp", "region", "batch_num", "batch_size")


class ExportFormatError(ValueError):
    """The bytes are not a well-formed export zip, export.bin or export.sig."""


def read_export_zip(data: bytes) -> tuple[ExportBatch, list[ExportSignature]]:
    """Decode a downloaded export zip. Does not verify signatures: use `unzip_export` for the
    signed bytes and `signing.verify_signature`. Raises `ExportFormatError`."""
    export_bin, export_sig = unzip_export(data)
    return decode_export_bin(export_bin), decode_signature_list(export_sig)


def unzip_export(data: bytes) -> tuple[bytes, bytes]:
    """(export.bin, export.sig) exactly as stored. Raises `ExportFormatError` when the zip is
    corrupt, lacks either entry, or an entry would inflate beyond `MAX_ENTRY_BYTES`."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _read_entry(archive, EXPORT_BIN_NAME), _read_entry(archive, EXPORT_SIG_NAME)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise ExportFormatError(f"not a readable export zip: {exc}") from exc


def decode_export_bin(export_bin: bytes) -> ExportBatch:
    """Parse export.bin. Absent optional key fields come back as the runtime sees them:
    rolling_period 144, report_type and days_since_onset `None`; revised_keys (field 8) as
    `ExportBatch.revised_keys`. Raises `ExportFormatError` for a wrong header,
    bytes that are not a TemporaryExposureKeyExport, or a missing header field."""
    if export_bin[: len(EXPORT_HEADER)] != EXPORT_HEADER:
        raise ExportFormatError(f"export.bin must start with {EXPORT_HEADER!r}")
    message = pb.TemporaryExposureKeyExport()
    try:
        message.ParseFromString(export_bin[len(EXPORT_HEADER) :])
    except DecodeError as exc:
        raise ExportFormatError(f"export.bin is not a TemporaryExposureKeyExport: {exc}") from exc
    missing = [name for name in _REQUIRED_EXPORT_FIELDS if not message.HasField(name)]
    if missing:
        raise ExportFormatError(f"export.bin lacks {', '.join(missing)}")
    return ExportBatch(
        **{name: getattr(message, name) for name in _REQUIRED_EXPORT_FIELDS},
        signature_infos=tuple(_signature_info(info) for info in message.signature_infos),
        keys=tuple(_export_key(key) for key in message.keys),
        revised_keys=tuple(_export_key(key) for key in message.revised_keys),
    )


def decode_signature_list(export_sig: bytes) -> list[ExportSignature]:
    """Parse export.sig. Raises `ExportFormatError` if it is not a TEKSignatureList."""
    message = pb.TEKSignatureList()
    try:
        message.ParseFromString(export_sig)
    except DecodeError as exc:
        raise ExportFormatError(f"export.sig is not a TEKSignatureList: {exc}") from exc
    return [
        ExportSignature(
            signature_info=_signature_info(signature.signature_info),
            batch_num=signature.batch_num,
            batch_size=signature.batch_size,
            signature=signature.signature,
        )
        for signature in message.signatures
    ]


def _read_entry(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        entry = archive.getinfo(name)
    except KeyError:
        raise ExportFormatError(f"export zip has no {name}") from None
    if entry.file_size > MAX_ENTRY_BYTES:
        raise ExportFormatError(f"{name} would inflate to {entry.file_size} bytes")
    return archive.read(entry)


def _signature_info(info: pb.SignatureInfo) -> SignatureInfo:
    return SignatureInfo(
        verification_key_version=info.verification_key_version,
        verification_key_id=info.verification_key_id,
        signature_algorithm=info.signature_algorithm,
    )


def _export_key(key: pb.TemporaryExposureKey) -> ExportKey:
    return ExportKey(
        key_data=key.key_data,
        transmission_risk_level=key.transmission_risk_level,
        rolling_start_interval_number=key.rolling_start_interval_number,
        rolling_period=key.rolling_period,
        report_type=int(key.report_type) if key.HasField("report_type") else None,
        days_since_onset=(
            key.days_since_onset_of_symptoms
            if key.HasField("days_since_onset_of_symptoms")
            else None
        ),
    )


def unpack_keys(packed_keys: bytes | bytearray | memoryview) -> list[ExportKey]:
    """`PACKED_KEY` rows as `ExportKey`s (report_type set; `NO_ONSET` as no onset), as the
    tests read what the export packs. Raises `ValueError` if it is not whole rows."""
    if len(packed_keys) % PACKED_KEY.size:
        raise ValueError(f"packed keys must be whole {PACKED_KEY.size}-byte rows")
    return [
        ExportKey(key, risk, start, period, report, None if onset == NO_ONSET else onset)
        for key, risk, start, period, report, onset in PACKED_KEY.iter_unpack(packed_keys)
    ]
