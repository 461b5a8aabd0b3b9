"""Pure rules of contact details (DESIGN §2.2): what a ``PUT``/``PATCH /user/details``
may set, and the record the app reads back. No I/O here: ``now`` is a parameter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from covidtracer.validation import TEXT_MESSAGE, Problems, is_text, pascal

NAME_MAX = 50

# The app's own rule for names (the same pattern it checks before sending).
PERSON_NAME = re.compile(r"[-.'`ʼ‘’A-Za-zĀ-ŌÀ-ÖØ-öø-ÿŠŽā-ɏ ]*")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MIDDLE_NAME_MAX = 100
# The app offers a short list (and free text); 50 holds any of them and keeps the export small.
GENDER_MAX = 50
# Stats NZ's level-1 ethnic groups are 6 and level 4 has ~230; nobody ticks 20, and each
# label (or the free-text "other") fits in 100 characters.
ETHNICITY_SELECTED_MAX = 20
ETHNICITY_TEXT_MAX = 100
MAX_AGE_YEARS = 130
# A date of birth is "in the past" if it is not later than today anywhere on Earth (UTC+14):
# a baby born today in New Zealand has a date of birth that is still tomorrow in UTC.
EARLIEST_TIME_ZONE = timedelta(hours=14)

DETAILS_FIELDS = (
    "firstName", "middleName", "lastName", "phone", "dateOfBirth", "gender", "ethnicity",
)  # fmt: skip
REQUIRED_DETAILS = ("firstName", "lastName", "phone")
# Apps 3.0.0–6.1.1 create the record with one PATCH right after the first sign-in, and may
# leave the phone out (CLIENTS.md): a PATCH creates a record from the names alone.
REQUIRED_TO_CREATE = ("firstName", "lastName")
ETHNICITY_FIELDS = ("selected", "other")

_NAME_MESSAGE = "Names may contain letters, spaces, hyphens, apostrophes and full stops only."


@dataclass(frozen=True)
class Ethnicity:
    selected: tuple[str, ...]
    other: str | None = None

    def wire(self) -> dict[str, Any]:
        """As stored and returned: ``other`` omitted when there is none."""
        value: dict[str, Any] = {"selected": list(self.selected)}
        if self.other is not None:
            value["other"] = self.other
        return value


@dataclass(frozen=True)
class ContactDetails:
    """A person's stored contact details (the ``PersonalDetails`` item contract in
    ``covidtracer.personaldetails.model``); ``None`` optional fields are absent, never empty."""

    user_id: str
    email: str
    first_name: str
    last_name: str
    # Absent only for a record a PATCH created without one (REQUIRED_TO_CREATE).
    phone: str | None
    updated_at: str
    middle_name: str | None = None
    date_of_birth: str | None = None
    gender: str | None = None
    ethnicity: Ethnicity | None = None

    def wire(self) -> dict[str, Any]:
        """The body of ``GET /user/details``: the record plus ``email`` and ``updatedAt``
        (the userId is the caller's own and is not repeated)."""
        body: dict[str, Any] = {"firstName": self.first_name}
        if self.middle_name is not None:
            body["middleName"] = self.middle_name
        body["lastName"] = self.last_name
        if self.phone is not None:
            body["phone"] = self.phone
        if self.date_of_birth is not None:
            body["dateOfBirth"] = self.date_of_birth
        if self.gender is not None:
            body["gender"] = self.gender
        if self.ethnicity is not None:
            body["ethnicity"] = self.ethnicity.wire()
        body.update(email=self.email, updatedAt=self.updated_at)
        return body


# Field name on the wire -> attribute of ContactDetails.
DETAILS_ATTRIBUTES = {
    "firstName": "first_name",
    "middleName": "middle_name",
    "lastName": "last_name",
    "phone": "phone",
    "dateOfBirth": "date_of_birth",
    "gender": "gender",
    "ethnicity": "ethnicity",
}


def parse_details(
    body: Mapping[str, Any], *, now: datetime, partial: bool
) -> dict[str, str | Ethnicity | None]:
    """The fields a ``PUT`` (``partial=False``) or ``PATCH`` (``partial=True``) sets, by wire
    name; ``None`` clears an optional field. Raises ``ValidationError`` listing every problem.

    PUT needs ``firstName``, ``lastName`` and ``phone`` (the export's item contract requires
    a phone); PATCH takes any subset of the known fields, but cannot clear a required one.
    Names are trimmed; empty optional values read as "cleared"; the phone is returned in
    E.164 without spaces. Identity is never in the body: ``userId`` is an unknown field.
    """
    problems = Problems()
    problems.unknown_fields(body, DETAILS_FIELDS)
    changes: dict[str, str | Ethnicity | None] = {}

    def present(name: str) -> bool:
        return not partial or name in body

    for name in ("firstName", "lastName"):
        if present(name):
            value = problems.string(
                body, name, max_length=NAME_MAX, pattern=PERSON_NAME, pattern_message=_NAME_MESSAGE
            )
            if value is not None and not value.strip():
                problems.add(pascal(name), "This field is required.")
            elif value is not None:
                changes[name] = value.strip()
    if present("middleName"):
        middle = problems.string(
            body,
            "middleName",
            required=False,
            max_length=MIDDLE_NAME_MAX,
            pattern=PERSON_NAME,
            pattern_message=_NAME_MESSAGE,
        )
        if "middleName" not in problems.errors:
            changes["middleName"] = (middle or "").strip() or None
    if present("phone"):
        phone = problems.phone(body)
        if phone is not None:
            changes["phone"] = phone
    if present("dateOfBirth"):
        born = _date_of_birth(problems, body, now)
        if "DateOfBirth" not in problems.errors:
            changes["dateOfBirth"] = born
    if present("gender"):
        gender = problems.string(body, "gender", required=False, max_length=GENDER_MAX)
        if "Gender" not in problems.errors:
            changes["gender"] = (gender or "").strip() or None
    if present("ethnicity"):
        ethnicity = _ethnicity(problems, body.get("ethnicity"))
        if not any(key.startswith("Ethnicity") for key in problems.errors):
            changes["ethnicity"] = ethnicity
    problems.raise_if_any()
    return changes


def apply_details(
    current: ContactDetails | None,
    changes: Mapping[str, str | Ethnicity | None],
    *,
    user_id: str,
    email: str,
    updated_at: str,
) -> ContactDetails:
    """The record after ``changes``: over ``current`` for a PATCH, from nothing for a PUT or
    for the PATCH that creates a record (``missing_to_create`` checks it may)."""
    base: dict[str, Any] = dict.fromkeys(DETAILS_ATTRIBUTES.values())
    if current is not None:
        base = {attribute: getattr(current, attribute) for attribute in DETAILS_ATTRIBUTES.values()}
    for name, value in changes.items():
        base[DETAILS_ATTRIBUTES[name]] = value
    return ContactDetails(user_id=user_id, email=email, updated_at=updated_at, **base)


def missing_to_create(changes: Mapping[str, str | Ethnicity | None]) -> dict[str, list[str]]:
    """What a PATCH lacks to create a record (``ValidationError`` errors; empty: nothing)."""
    return {
        pascal(name): ["This field is required to create the record."]
        for name in REQUIRED_TO_CREATE
        if not changes.get(name)
    }


def _date_of_birth(problems: Problems, body: Mapping[str, Any], now: datetime) -> str | None:
    if body.get("dateOfBirth") == "":
        return None  # cleared, like the other optional fields
    raw = problems.string(
        body,
        "dateOfBirth",
        required=False,
        pattern=DATE,
        pattern_message="The date of birth must be a date (YYYY-MM-DD).",
    )
    if not raw:
        return None
    try:
        born = date.fromisoformat(raw)
    except ValueError:
        problems.add("DateOfBirth", "The date of birth must be a date (YYYY-MM-DD).")
        return None
    latest = (now + EARLIEST_TIME_ZONE).date()
    if born > latest:
        problems.add("DateOfBirth", "The date of birth must be in the past.")
    elif born <= _years_before(now.date(), MAX_AGE_YEARS + 1):
        problems.add("DateOfBirth", f"The age must be at most {MAX_AGE_YEARS} years.")
    return raw


def _years_before(day: date, years: int) -> date:
    """The same day ``years`` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _ethnicity(problems: Problems, value: Any) -> Ethnicity | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add("Ethnicity", "This field must be an object with selected and other.")
        return None
    problems.unknown_fields(value, ETHNICITY_FIELDS, "Ethnicity.")
    selected = value.get("selected")
    labels: list[str] = []
    if selected is None:
        selected = []
    if not isinstance(selected, list):
        problems.add("Ethnicity.Selected", "This field must be a list of strings.")
    elif len(selected) > ETHNICITY_SELECTED_MAX:
        problems.add("Ethnicity.Selected", f"Select at most {ETHNICITY_SELECTED_MAX}.")
    else:
        for index, label in enumerate(selected):
            if not isinstance(label, str) or not label.strip():
                problems.add(f"Ethnicity.Selected[{index}]", "This must be a non-empty string.")
            elif not is_text(label):
                problems.add(f"Ethnicity.Selected[{index}]", TEXT_MESSAGE)
            elif len(label) > ETHNICITY_TEXT_MAX:
                problems.add(
                    f"Ethnicity.Selected[{index}]",
                    f"This must be at most {ETHNICITY_TEXT_MAX} characters.",
                )
            else:
                labels.append(label.strip())
    other = problems.string(
        value, "other", key="Ethnicity.Other", required=False, max_length=ETHNICITY_TEXT_MAX
    )
    other = (other or "").strip() or None
    if not labels and other is None:
        return None  # nothing chosen: the attribute is omitted, as the item contract asks
    return Ethnicity(tuple(labels), other)
