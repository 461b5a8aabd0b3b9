"""Collecting per-field problems for ``ValidationError`` in the shape phones read (DESIGN §2).

Keys are the PascalCase form of the JSON field names the app sends (``consentCode`` ->
``ConsentCode``); items of arrays are keyed by their index and field, as .NET-style model
binding does (``Locations[3].Time``). Messages never quote the value that was sent: it may be
personal data.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from covidtracer.errors import ValidationError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_ISO_UTC = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:Z|\+00:00|\+0000)",
    re.ASCII,
)
# Text people type never holds control characters (C0, DEL, C1), and a lone UTF-16
# surrogate is not text at all (it cannot be encoded, stored or exported). Multi-line
# fields (notes, message bodies) may hold tabs and line breaks.
_NOT_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NOT_MULTILINE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
TEXT_MESSAGE = "This field must not contain control characters."
# A phone number in E.164 once the spaces people type are gone (``+64 21 012 3456``).
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Raw phone text before spaces are removed: E.164 is at most 16 characters, so 32 leaves room
# for any spacing a person types and still bounds what we parse.
PHONE_TEXT_MAX = 32
PHONE_MESSAGE = "The phone number must be in international format (+64 …)."


def is_text(value: str, *, multiline: bool = False) -> bool:
    """Whether ``value`` is text a person could have typed (see ``_NOT_TEXT``)."""
    return not (_NOT_MULTILINE_TEXT if multiline else _NOT_TEXT).search(value)


def pascal(name: str) -> str:
    """``consentCode`` -> ``ConsentCode`` (the key style of ``errors``)."""
    return name[:1].upper() + name[1:]


def camel(name: str) -> str:
    """``first_name`` -> ``firstName``: a Python field's name in JSON and in DynamoDB items."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def camel_fields(record: DataclassInstance, *, omit: Collection[str] = ()) -> dict[str, Any]:
    """A dataclass's fields under their ``camel`` names, in declaration order, as JSON
    bodies, NCTS requests and DynamoDB items spell them; ``omit`` names fields left out."""
    return {
        camel(field.name): getattr(record, field.name)
        for field in dataclasses.fields(record)
        if field.name not in omit
    }


class Problems:
    """Per-field messages, collected so a caller learns every mistake in one response."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        """Raises ``ValidationError`` with every message collected so far."""
        if self.errors:
            raise ValidationError(self.errors)

    def unknown_fields(
        self, value: Mapping[str, Any], known: Iterable[str], prefix: str = ""
    ) -> None:
        """Unknown fields are refused: a typo must not silently drop data."""
        allowed = set(known)
        for name in value:
            if name not in allowed:
                self.add(f"{prefix}{pascal(str(name))[:64]}", "This field is not recognised.")

    def string(
        self,
        value: Mapping[str, Any],
        name: str,
        *,
        key: str | None = None,
        required: bool = True,
        max_length: int | None = None,
        pattern: re.Pattern[str] | None = None,
        pattern_message: str = "The value is not in the expected format.",
        multiline: bool = False,
    ) -> str | None:
        """A string field; absent or null optional fields read as ``None``. Control
        characters (but tabs and line breaks when ``multiline``) and lone surrogates are
        refused."""
        key = key or pascal(name)
        raw = value.get(name)
        if raw is None:
            if required:
                self.add(key, "This field is required.")
            return None
        if not isinstance(raw, str):
            self.add(key, "This field must be a string.")
            return None
        if not is_text(raw, multiline=multiline):
            self.add(key, TEXT_MESSAGE)
            return None
        if required and not raw.strip() and pattern is None:
            self.add(key, "This field is required.")
            return None
        if max_length is not None and len(raw) > max_length:
            self.add(key, f"This field must be at most {max_length} characters.")
            return None
        if pattern is not None and not pattern.fullmatch(raw):
            self.add(key, pattern_message)
            return None
        return raw

    def utc_time(
        self, value: Mapping[str, Any], name: str, *, key: str | None = None
    ) -> datetime | None:
        """A required ISO-8601 UTC timestamp (``Z`` or ``+00:00``)."""
        key = key or pascal(name)
        raw = self.string(value, name, key=key)
        if raw is None:
            return None
        parsed = parse_utc(raw)
        if parsed is None:
            self.add(key, "This field must be an ISO-8601 time in UTC.")
        return parsed

    def phone(self, value: Mapping[str, Any], name: str = "phone") -> str | None:
        """A required phone number, returned in E.164 without the spaces people type."""
        raw = self.string(value, name, max_length=PHONE_TEXT_MAX)
        if raw is None:
            return None
        phone = normalise_phone(raw)
        if phone is None:
            self.add(pascal(name), PHONE_MESSAGE)
        return phone


def normalise_phone(text: str) -> str | None:
    """``+64 21 012 3456`` -> ``+64210123456``; ``None`` unless E.164 once spaces are gone."""
    phone = text.replace(" ", "")
    return phone if E164.fullmatch(phone) else None


def parse_utc(text: str) -> datetime | None:
    """An aware UTC datetime, or ``None`` when ``text`` is not ISO-8601 UTC."""
    if not _ISO_UTC.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def format_utc_millis(moment: datetime) -> str:
    """``2021-10-04T21:05:12.345Z``: always milliseconds (the export contract, events)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def format_utc(moment: datetime) -> str:
    """``2021-10-04T21:05:12Z``, or with milliseconds when the time has them."""
    moment = moment.astimezone(UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
