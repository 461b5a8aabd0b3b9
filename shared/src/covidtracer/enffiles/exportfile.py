"""Exposure key export files: their records and the byte-exact writer of export.bin/.sig/.zip.

The format is Apple's and Google's "Exposure Key Export File Format" (messages in
`infra/local/tracerstack/export.proto`). Every phone parses these bytes, so the writer must
produce exactly what the protobuf runtime would for the same set fields. It encodes by hand
only for speed: the export run must turn 1.4 M keys into signed files within 2 s (DESIGN §7),
and building a protobuf object per key is ~1.6x slower than this writer even on the upb
runtime (measured on 200,000 keys), with no way to skip work for repeated field values.
`tracerstack.exportreader` decodes with the real runtime and the tests hold the two against
each other and against Google's example file.

Pure code: no I/O besides building bytes in memory; time and randomness come in as values.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from enum import IntEnum
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

from covidtracer.enffiles import wire

EXPORT_HEADER = b"EK Export v1    "
"""The 16 bytes every export.bin starts with; phones reject a file without them."""

SIGNATURE_ALGORITHM = "1.2.840.10045.4.3.2"
"""ASN.1 OID of ECDSA with SHA-256, the only algorithm phones accept."""

DEFAULT_ROLLING_PERIOD = 144
"""The proto default of rolling_period (a full day of 10-minute intervals)."""

KEY_LENGTH = 16
"""Temporary exposure keys are 16 bytes; phones discard a file holding any other length."""

_PACKED_FIELDS = struct.Struct(">hiihi")
PACKED_KEY = struct.Struct(f">{KEY_LENGTH}s{_PACKED_FIELDS.format[1:]}")
"""A key as the export query packs it, fixed width: key_data, transmission_risk_level (int16),
rolling_start_interval_number, rolling_period (int32), report_type (int16), days_since_onset
(int32; `NO_ONSET` when absent). Big-endian, as PostgreSQL's ``int2send``/``int4send`` write."""

NO_ONSET = 2**15
"""`PACKED_KEY`'s days_since_onset for "absent": outside the smallint column's range."""

_PACKED_SPLIT = struct.Struct(f"{KEY_LENGTH}s{_PACKED_FIELDS.size}s")

EXPORT_BIN_NAME = "export.bin"
EXPORT_SIG_NAME = "export.sig"

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
"""The earliest time a zip entry can carry: fixed so that re-running an export yields the
same zip bytes (the signed content, export.bin, never depends on it)."""

# Field numbers, from export.proto.
_EXPORT_START_TIMESTAMP = 1
_EXPORT_END_TIMESTAMP = 2
_EXPORT_REGION = 3
_EXPORT_BATCH_NUM = 4
_EXPORT_BATCH_SIZE = 5
_EXPORT_SIGNATURE_INFOS = 6
_EXPORT_KEYS = 7
_EXPORT_REVISED_KEYS = 8
_KEY_KEY_DATA = 1
_KEY_TRANSMISSION_RISK_LEVEL = 2
_KEY_ROLLING_START_INTERVAL_NUMBER = 3
_KEY_ROLLING_PERIOD = 4
_KEY_REPORT_TYPE = 5
_KEY_DAYS_SINCE_ONSET = 6
_SIGINFO_VERIFICATION_KEY_VERSION = 3
_SIGINFO_VERIFICATION_KEY_ID = 4
_SIGINFO_SIGNATURE_ALGORITHM = 5
_SIGLIST_SIGNATURES = 1
_SIG_SIGNATURE_INFO = 1
_SIG_BATCH_NUM = 2
_SIG_BATCH_SIZE = 3
_SIG_SIGNATURE = 4


class ReportType(IntEnum):
    """TemporaryExposureKey.ReportType; proto2 enums are closed, so only these values exist."""

    UNKNOWN = 0
    CONFIRMED_TEST = 1
    CONFIRMED_CLINICAL_DIAGNOSIS = 2
    SELF_REPORT = 3
    RECURSIVE = 4
    REVOKED = 5


class ExportKey(NamedTuple):
    """One key as it goes into a file; `None` means the optional field is absent.

    A NamedTuple rather than a frozen dataclass: about 2.5 times cheaper to build and to
    unpack (the export run itself skips them: `encode_packed_export_bin`).
    The writer omits rolling_period when it is 144, as Google's server does: the proto
    default makes the phone (and the reader) see 144 either way, 3 bytes per key cheaper.
    """

    key_data: bytes
    transmission_risk_level: int
    rolling_start_interval_number: int
    rolling_period: int = DEFAULT_ROLLING_PERIOD
    report_type: int | None = None
    days_since_onset: int | None = None


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    """Which public key verifies the file; phones look the pair up in their configuration."""

    verification_key_version: str
    verification_key_id: str
    signature_algorithm: str = SIGNATURE_ALGORITHM


@dataclass(frozen=True, slots=True)
class ExportBatch:
    """The content of one export.bin. Timestamps are UTC seconds (uint64)."""

    start_timestamp: int
    end_timestamp: int
    region: str
    batch_num: int
    batch_size: int
    signature_infos: tuple[SignatureInfo, ...]
    keys: tuple[ExportKey, ...]
    # Keys published before whose report type changed (field 8): Google's revised_keys.
    revised_keys: tuple[ExportKey, ...] = ()

    @classmethod
    def one_of_one(
        cls,
        start_timestamp: int,
        end_timestamp: int,
        region: str,
        signature_info: SignatureInfo,
        keys: tuple[ExportKey, ...] = (),
    ) -> ExportBatch:
        """A file that is a batch of its own, as every file we publish is (``split_batch``)."""
        return cls(start_timestamp, end_timestamp, region, 1, 1, (signature_info,), keys)


@dataclass(frozen=True, slots=True)
class ExportSignature:
    """One TEKSignature of export.sig: a DER ECDSA signature over all of export.bin."""

    signature_info: SignatureInfo
    batch_num: int
    batch_size: int
    signature: bytes


_key_data_of = itemgetter(0)


def encode_export_bin(batch: ExportBatch) -> bytes:
    """export.bin: `EXPORT_HEADER` + TemporaryExposureKeyExport, keys sorted by key bytes.

    Sorting scatters the keys of one upload across the file (no linkage by position); it is
    a linear pass when the caller already supplies keys in key order (`ORDER BY key_data`).
    Every scalar field of the batch is written; each key's optional fields as `ExportKey`
    says. Output equals `export_pb2` serialization of the same set fields, byte for byte.

    Raises `ValueError` for a key that is not 16 bytes or any value the protobuf runtime
    would refuse (int32/uint64 ranges, a report_type outside `ReportType`).
    """
    out = _export_header(batch)
    _append_key_records(out, sorted(batch.keys, key=_key_data_of))
    _append_key_records(out, sorted(batch.revised_keys, key=_key_data_of), _revised_frame)
    return bytes(out)


def encode_packed_export_bin(batch: ExportBatch, packed_keys: bytes | memoryview) -> bytes:
    """export.bin of `batch` whose keys are `packed_keys`, `PACKED_KEY` rows in key order.

    Equals `encode_export_bin` of the same batch with those keys (as `ExportKey`s,
    report_type set) byte for byte; the caller guarantees the order. `PackedExportBin` is
    the same writer fed page by page.

    Raises `ValueError` if `batch.keys` is not empty (the keys come packed), if
    `packed_keys` is not whole rows, or for any value `encode_export_bin` refuses.
    """
    writer = PackedExportBin(batch)
    writer.append(packed_keys)
    return bytes(writer.finish())


class PackedExportBin:
    """An export.bin written from `PACKED_KEY` rows that arrive in pages: the export run's
    path, so that no per-key object is built and a file's keys need not be in memory twice.

    The caller appends pages in key order. `finish` may still change the header's
    end_timestamp (the split rule decides it only once it is known whether more keys
    follow): it is a fixed64, so the header keeps its length and is rewritten in place.
    """

    def __init__(self, batch: ExportBatch) -> None:
        if batch.keys:
            raise ValueError("PackedExportBin takes the keys packed, not in the batch")
        self._batch = batch
        self._out = _export_header(batch)
        self._header_length = len(self._out)
        self._frames: dict[bytes, tuple[bytes, bytes]] = {}
        self.keys = 0

    def append(self, packed_keys: bytes | memoryview) -> None:
        """Append the key records of `packed_keys` (whole rows, after every key so far).

        Raises `ValueError` if it is not whole rows or holds a value the format refuses.
        """
        if len(packed_keys) % PACKED_KEY.size:
            raise ValueError(f"packed keys must be whole {PACKED_KEY.size}-byte rows")
        _append_framed(
            self._out, _PACKED_SPLIT.iter_unpack(packed_keys), _packed_frame, self._frames
        )
        self.keys += len(packed_keys) // PACKED_KEY.size

    @property
    def header_length(self) -> int:
        """The bytes before the keys (rewritten by ``finish`` when end_timestamp changes)."""
        return self._header_length

    def written_since(self, offset: int) -> bytes:
        """A copy of what was framed after ``offset`` (the export pipeline deflates it)."""
        with memoryview(self._out) as framed:
            return bytes(framed[offset:])  # one copy (a bytearray slice would be a second)

    def append_revised(self, packed_keys: bytes | memoryview) -> None:
        """Append `PACKED_KEY` rows as revised_keys (field 8), after every key: the field
        order the protobuf runtime writes. Raises `ValueError` as `append` does."""
        if len(packed_keys) % PACKED_KEY.size:
            raise ValueError(f"packed keys must be whole {PACKED_KEY.size}-byte rows")
        _append_framed(self._out, _PACKED_SPLIT.iter_unpack(packed_keys), _packed_revised_frame)

    def finish(self, end_timestamp: int | None = None) -> bytearray:
        """The export.bin, as the writer's own buffer (a file's worth: no copy); with
        `end_timestamp`, the header carries that one instead. Append nothing after."""
        if end_timestamp is not None and end_timestamp != self._batch.end_timestamp:
            header = _export_header(replace(self._batch, end_timestamp=end_timestamp))
            if len(header) != self._header_length:  # never: end_timestamp is a fixed64
                raise ValueError("the header changed length")
            self._out[: self._header_length] = header
        return self._out


def _packed_key(shape: bytes) -> ExportKey:
    risk, start, period, report_type, onset = _PACKED_FIELDS.unpack(shape)
    return ExportKey(b"", risk, start, period, report_type, None if onset == NO_ONSET else onset)


def _packed_frame(shape: bytes) -> tuple[bytes, bytes]:
    return _key_frame(_packed_key(shape))


def _packed_revised_frame(shape: bytes) -> tuple[bytes, bytes]:
    return _key_frame(_packed_key(shape), _EXPORT_REVISED_KEYS)


def _export_header(batch: ExportBatch) -> bytearray:
    """export.bin up to its keys: the header and every field of `batch` but the keys."""
    out = bytearray(EXPORT_HEADER)
    out += wire.tag(_EXPORT_START_TIMESTAMP, wire.FIXED64) + wire.fixed64(batch.start_timestamp)
    out += wire.tag(_EXPORT_END_TIMESTAMP, wire.FIXED64) + wire.fixed64(batch.end_timestamp)
    out += wire.string(_EXPORT_REGION, batch.region)
    out += wire.int32_field(_EXPORT_BATCH_NUM, batch.batch_num)
    out += wire.int32_field(_EXPORT_BATCH_SIZE, batch.batch_size)
    for info in batch.signature_infos:
        out += wire.length_delimited(_EXPORT_SIGNATURE_INFOS, _signature_info_message(info))
    return out


def encode_signature_list(
    signature_info: SignatureInfo, batch_num: int, batch_size: int, signature_der: bytes
) -> bytes:
    """export.sig: a TEKSignatureList holding one TEKSignature.

    batch_num and batch_size must repeat the signed export.bin's (both 1 in our files).
    Raises `ValueError` for values outside int32.
    """
    signature = (
        wire.length_delimited(_SIG_SIGNATURE_INFO, _signature_info_message(signature_info))
        + wire.int32_field(_SIG_BATCH_NUM, batch_num)
        + wire.int32_field(_SIG_BATCH_SIZE, batch_size)
        + wire.length_delimited(_SIG_SIGNATURE, signature_der)
    )
    return wire.length_delimited(_SIGLIST_SIGNATURES, signature)


def build_zip(export_bin: bytes | bytearray, export_sig: bytes, *, compresslevel: int = 6) -> bytes:
    """The file phones download: `export.bin` then `export.sig`, both deflated.

    Deterministic: fixed entry times, attributes and host system, so the same inputs give
    the same bytes on every run and platform that share a zlib build (deflate output may
    differ between zlib implementations; export.bin and its signature never do).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in ((EXPORT_BIN_NAME, export_bin), (EXPORT_SIG_NAME, export_sig)):
            entry = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.create_system = 0  # otherwise 3 on Unix and 0 on Windows
            entry.external_attr = 0
            archive.writestr(entry, data, compresslevel=compresslevel)
    return buffer.getvalue()


def _signature_info_message(info: SignatureInfo) -> bytes:
    return (
        wire.string(_SIGINFO_VERIFICATION_KEY_VERSION, info.verification_key_version)
        + wire.string(_SIGINFO_VERIFICATION_KEY_ID, info.verification_key_id)
        + wire.string(_SIGINFO_SIGNATURE_ALGORITHM, info.signature_algorithm)
    )


def _append_key_records(
    out: bytearray,
    keys: list[ExportKey],
    frame_of: Callable[[tuple[Any, ...]], tuple[bytes, bytes]] | None = None,
) -> None:
    """Append one `keys` field per key (or, with `_revised_frame`, one `revised_keys`
    field); raises `ValueError` for a key that is not 16 bytes."""
    for key in keys:
        if len(key[0]) != KEY_LENGTH:
            raise ValueError(f"key_data must be {KEY_LENGTH} bytes, got {len(key[0])}")
    _append_framed(out, ((key[0], key[1:]) for key in keys), frame_of or _shape_frame)


def _append_framed[Shape: Hashable](
    out: bytearray,
    keys: Iterable[tuple[bytes, Shape]],
    frame_of: Callable[[Shape], tuple[bytes, bytes]],
    frames: dict[Shape, tuple[bytes, bytes]] | None = None,
) -> None:
    """Append one `keys` field per (key_data, shape). The hot loop of an export run.

    A key record is the key bytes framed by bytes that depend only on the other five fields
    (the shape), and files repeat few combinations of them (start intervals fall on day
    boundaries), so each shape is framed once, from per-field encodings cached in turn.
    """
    if frames is None:
        frames = {}
    get_frame = frames.get
    for key_data, shape in keys:
        frame = get_frame(shape)
        if frame is None:
            frame = frames[shape] = frame_of(shape)
        out += frame[0]
        out += key_data
        out += frame[1]


def _shape_frame(shape: tuple[Any, ...]) -> tuple[bytes, bytes]:
    return _key_frame(ExportKey(b"", *shape))


def _revised_frame(shape: tuple[Any, ...]) -> tuple[bytes, bytes]:
    return _key_frame(ExportKey(b"", *shape), _EXPORT_REVISED_KEYS)


def _key_frame(key: ExportKey, field_number: int = _EXPORT_KEYS) -> tuple[bytes, bytes]:
    """(bytes before key_data, bytes after it) of this key's record in the export message,
    as field `field_number` (7 keys, 8 revised_keys)."""
    tail = (
        _int32_field(_KEY_TRANSMISSION_RISK_LEVEL, key.transmission_risk_level)
        + _int32_field(_KEY_ROLLING_START_INTERVAL_NUMBER, key.rolling_start_interval_number)
        + _rolling_period_field(key.rolling_period)
    )
    if key.report_type is not None:
        tail += _report_type_field(key.report_type)
    if key.days_since_onset is not None:
        tail += _days_since_onset_field(key.days_since_onset)
    return _key_head(len(tail), field_number), tail


# Field encodings by value. Bounded caches: real values are few (risk 0-8, one start
# interval per day, onset within +-14 days), and a miss only costs a few microseconds.
@lru_cache(maxsize=4096)
def _int32_field(field_number: int, value: int) -> bytes:
    return wire.int32_field(field_number, value)


@lru_cache(maxsize=4096)
def _rolling_period_field(value: int) -> bytes:
    encoded = wire.int32(value)  # validates even the default, which is then left out
    if value == DEFAULT_ROLLING_PERIOD:
        return b""
    return wire.tag(_KEY_ROLLING_PERIOD, wire.VARINT) + encoded


@lru_cache(maxsize=64)
def _report_type_field(value: int) -> bytes:
    return wire.int32_field(_KEY_REPORT_TYPE, ReportType(value))


@lru_cache(maxsize=4096)
def _days_since_onset_field(value: int) -> bytes:
    return wire.tag(_KEY_DAYS_SINCE_ONSET, wire.VARINT) + wire.sint32(value)


@lru_cache(maxsize=64)
def _key_head(tail_length: int, field_number: int = _EXPORT_KEYS) -> bytes:
    key_data_field = wire.tag(_KEY_KEY_DATA, wire.LENGTH_DELIMITED) + wire.varint(KEY_LENGTH)
    message_length = len(key_data_field) + KEY_LENGTH + tail_length
    keys_field = wire.tag(field_number, wire.LENGTH_DELIMITED) + wire.varint(message_length)
    return keys_field + key_data_field
