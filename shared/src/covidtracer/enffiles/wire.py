"""Protocol buffer wire-format primitives for hand encoding, byte-identical to the runtime.

Only what the export messages need: varints, zigzag sint32, fixed64 and length-delimited
fields, with the protobuf runtime's range rules (a value the runtime would refuse raises
`ValueError` here instead of being silently wrapped).
"""

from __future__ import annotations

import operator
import struct

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
UINT64_MAX = 2**64 - 1

# Wire types (the low three bits of a field tag).
VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2

_FIXED64 = struct.Struct("<Q")


def tag(field_number: int, wire_type: int) -> bytes:
    """The field key that precedes every field value."""
    return varint((field_number << 3) | wire_type)


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer; raises `ValueError` above 2**64 - 1."""
    value = operator.index(value)
    if not 0 <= value <= UINT64_MAX:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def int32(value: int) -> bytes:
    """An int32 or enum field value: negatives take ten bytes (sign-extended to 64 bits),
    as every protobuf runtime writes them. Raises `ValueError` outside int32."""
    value = _checked_int32(value)
    return varint(value + (1 << 64) if value < 0 else value)


def sint32(value: int) -> bytes:
    """A sint32 field value, zigzag-encoded so small negatives stay short.
    Raises `ValueError` outside int32."""
    value = _checked_int32(value)
    return varint((value << 1) ^ (value >> 31))


def fixed64(value: int) -> bytes:
    """A fixed64 field value (8 bytes little-endian); raises `ValueError` outside uint64."""
    value = operator.index(value)
    if not 0 <= value <= UINT64_MAX:
        raise ValueError(f"fixed64 out of range: {value}")
    return _FIXED64.pack(value)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """A complete bytes/string/sub-message field: tag, length, payload."""
    return tag(field_number, LENGTH_DELIMITED) + varint(len(payload)) + payload


def string(field_number: int, text: str) -> bytes:
    """A complete string field (UTF-8)."""
    return length_delimited(field_number, text.encode("utf-8"))


def int32_field(field_number: int, value: int) -> bytes:
    """A complete int32/enum field."""
    return tag(field_number, VARINT) + int32(value)


def _checked_int32(value: int) -> int:
    value = operator.index(value)
    if not INT32_MIN <= value <= INT32_MAX:
        raise ValueError(f"int32 out of range: {value}")
    return value
