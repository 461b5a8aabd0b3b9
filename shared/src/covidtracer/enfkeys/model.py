"""Pure rules of the ENF API: request shapes, upload codes, key validation (DESIGN §4).

No I/O and no clock: ``now`` and the policy numbers are parameters, so every rule is a row
in a table-driven test. Field names in ``ValidationError`` are the PascalCase of the app's
JSON names (``Exposures[3].KeyData``); messages never quote the value (codes and keys are
personal data).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from covidtracer.enffiles.exportfile import KEY_LENGTH
from covidtracer.enffiles.model import DAY_SECONDS, INTERVAL_SECONDS
from covidtracer.errors import ValidationError
from covidtracer.validation import TEXT_MESSAGE, is_text

# Exposure Notification protocol constants (not policy): a key's intervals are 10 minutes
# and keys are 16 bytes (both as the export file format states them), a key covers at most
# one day (144 intervals), and the framework's transmission risk levels are 0..8 (0 means
# "let the server or the phone decide").
MAX_ROLLING_PERIOD = DAY_SECONDS // INTERVAL_SECONDS
MAX_TRANSMISSION_RISK = 8

# Google's report types (the export's TemporaryExposureKey.report_type).
CONFIRMED_TEST = 1
CONFIRMED_CLINICAL_DIAGNOSIS = 2
SELF_REPORT = 3
REVOKED = 5
# The test types NCTS may ask a code for, by Google's names (exposure-notifications-server
# pkg/api/v1/verification_types.go: confirmed, likely, user-report, negative). A negative
# code only revokes keys already published (``covidtracer.publish``): it never stores keys.
TEST_TYPES = {
    "confirmed": CONFIRMED_TEST,
    "likely": CONFIRMED_CLINICAL_DIAGNOSIS,
    "user-report": SELF_REPORT,
    "negative": REVOKED,
}

CODE_DIGITS = 6
APP_HASH = re.compile(r"[0-9a-f]{256}")
NONCE = re.compile(r"[0-9a-f]{64}")
PLATFORMS = ("ios", "android", "test")
METRIC_OS = ("ios", "android")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MAX_TEXT = 2048


@dataclass(frozen=True)
class ApiRequest:
    """What a handler decodes from an HTTP request and hands a use case; a route sets the
    fields it has (the body, the bearer token, the query, …) and the rest stay empty."""

    body: Mapping[str, Any] = field(default_factory=dict)
    bearer: str | None = None
    query: Mapping[str, Any] = field(default_factory=dict)
    source_ip: str = "unknown"
    api_key: str | None = None
    path: str = ""


@dataclass(frozen=True)
class KeyRules:
    """The policy numbers of key validation (``settings.EnfKeySettings`` declares them)."""

    max_keys: int
    max_keys_per_start_interval: int
    max_age_days: int


@dataclass(frozen=True)
class ExposureKey:
    key_data: bytes
    rolling_start_number: int
    rolling_period: int
    transmission_risk_level: int

    @property
    def end_interval(self) -> int:
        return self.rolling_start_number + self.rolling_period


@dataclass(frozen=True)
class StoredKey(ExposureKey):
    """A key as it is written to ``exposures``: the uploaded key and what the upload adds."""

    report_type: int
    days_since_onset: int


@dataclass(frozen=True)
class Upload:
    token: uuid.UUID
    keys: tuple[ExposureKey, ...]
    platform: str
    device_verification_payload: str


@dataclass(frozen=True)
class CodeRequest:
    """NCTS asks for an upload code to be texted to a case."""

    phone: str
    symptom_onset: date
    report_type: int


@dataclass(frozen=True)
class Registration:
    nonce: str
    platform: str
    device_verification_payload: str


@dataclass(frozen=True)
class MetricEvent:
    os: str
    event: str
    version: str


@dataclass(frozen=True)
class CallbackRequest:
    phone: str
    first_name: str | None
    last_name: str | None
    contact_notes: str | None


# ---------------------------------------------------------------------------- codes


def new_code(randbelow: Callable[[int], int]) -> str:
    """A 6-digit upload code; ``randbelow`` is ``secrets.randbelow`` outside tests."""
    return f"{randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def app_code_hash(code: str) -> str:
    """What the app sends for ``code``: hex(SHA-512(code[0:3])) + hex(SHA-512(code)).

    The server stores only a keyed hash of this value, so it can look a code up by what the
    app sends without ever keeping the code itself.
    """
    head = hashlib.sha512(code[:3].encode()).hexdigest()
    return head + hashlib.sha512(code.encode()).hexdigest()


def parse_app_hash(body: Mapping[str, Any]) -> str:
    """The ``hash`` of ``POST /exposures/verify``: 256 lowercase hex characters."""
    value = body.get("hash")
    if not isinstance(value, str) or not APP_HASH.fullmatch(value):
        raise ValidationError.of("Hash", "The hash must be 256 lowercase hexadecimal characters.")
    return value


def verify_retry_after(
    *,
    last_failure_at: datetime | None,
    failure_day: date | None,
    failures: int,
    failures_since_success: int,
    now: datetime,
    min_interval_seconds: int,
    daily_failures: int,
    guarded_failures: int,
    guarded_until: datetime | None,
) -> int | None:
    """Seconds a registration must wait before presenting a code again, or None if it may now.

    Only the registration's own wrong codes count here, so nobody else can use them up:
    at most ``daily_failures`` a UTC day (with 10^6 codes, guessing stays hopeless for one
    registration); while the guessing guard is up (until ``guarded_until``), at most
    ``guarded_failures`` since its last right code; and ``min_interval_seconds`` after a
    wrong code (never after a right one: a retry after a lost answer goes straight through).
    """
    if failure_day == now.date() and failures >= daily_failures:
        tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        return _seconds_until(tomorrow, now)
    if guarded_until is not None and failures_since_success >= guarded_failures:
        return _seconds_until(guarded_until, now)
    if last_failure_at is not None:
        waited = (now - last_failure_at).total_seconds()
        if waited < min_interval_seconds:
            return max(1, int(min_interval_seconds - waited + 0.999))
    return None


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, int((moment - now).total_seconds()))


# ---------------------------------------------------------------------------- requests


def _text(
    body: Mapping[str, Any], name: str, field_name: str, *, max_length: int = _MAX_TEXT
) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.of(field_name, f"{field_name} is required.")
    if len(value) > max_length:
        raise ValidationError.of(field_name, f"{field_name} is too long.")
    if not is_text(value):
        raise ValidationError.of(field_name, TEXT_MESSAGE)
    return value


def _optional_text(
    body: Mapping[str, Any], name: str, field_name: str, max_length: int, *, multiline: bool = False
) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise ValidationError.of(field_name, f"{field_name} must be text of at most {max_length}.")
    if not is_text(value, multiline=multiline):
        raise ValidationError.of(field_name, TEXT_MESSAGE)
    return value


def parse_phone(body: Mapping[str, Any]) -> str:
    """A phone number in international format; spaces are allowed and removed."""
    value = body.get("phone")
    phone = value.replace(" ", "") if isinstance(value, str) else ""
    if not _E164.fullmatch(phone):
        raise ValidationError.of("Phone", "The phone number must be in international format.")
    return phone


def parse_registration(body: Mapping[str, Any], platforms: Sequence[str]) -> Registration:
    """``PUT /register``: a nonce from ``POST /register`` and an attestation for it."""
    nonce = body.get("nonce")
    if not isinstance(nonce, str) or not NONCE.fullmatch(nonce):
        raise ValidationError.of("Nonce", "The nonce must be 64 hexadecimal characters.")
    return Registration(
        nonce=nonce,
        platform=_platform(body, platforms),
        device_verification_payload=_text(
            body, "deviceVerificationPayload", "DeviceVerificationPayload", max_length=65_536
        ),
    )


def _platform(body: Mapping[str, Any], platforms: Sequence[str]) -> str:
    platform = body.get("platform")
    if not isinstance(platform, str) or platform not in PLATFORMS or platform not in platforms:
        raise ValidationError.of("Platform", "The platform is not supported.")
    return str(platform)


def parse_code_request(
    body: Mapping[str, Any], *, today: date, max_onset_age_days: int
) -> CodeRequest:
    """``POST /ncts/verification-codes``: every problem is reported at once."""
    errors: dict[str, list[str]] = {}
    phone = ""
    try:
        phone = parse_phone(body)
    except ValidationError as error:
        errors.update(error.errors)
    onset = _onset(body.get("symptomOnset"), today, max_onset_age_days, errors)
    test_type = body.get("testType", "confirmed")
    if test_type is None:
        test_type = "confirmed"
    if not isinstance(test_type, str) or test_type not in TEST_TYPES:
        errors["TestType"] = [f"The test type must be one of {', '.join(TEST_TYPES)}."]
    if errors or onset is None:
        raise ValidationError(errors)
    return CodeRequest(phone=phone, symptom_onset=onset, report_type=TEST_TYPES[test_type])


def _onset(
    raw: object, today: date, max_age_days: int, errors: dict[str, list[str]]
) -> date | None:
    message = "The symptom onset must be a date (YYYY-MM-DD)"
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
        errors["SymptomOnset"] = [f"{message}."]
        return None
    try:
        onset = date.fromisoformat(raw)
    except ValueError:
        errors["SymptomOnset"] = [f"{message}."]
        return None
    if onset > today:
        errors["SymptomOnset"] = ["The symptom onset cannot be in the future."]
    elif (today - onset).days > max_age_days:
        errors["SymptomOnset"] = [f"The symptom onset cannot be more than {max_age_days} days ago."]
    return onset


def parse_metric(body: Mapping[str, Any], events: Mapping[str, int]) -> MetricEvent:
    errors: dict[str, list[str]] = {}
    os, event = body.get("os"), body.get("event")
    # Only strings are looked up: a list or object sent as a name is not hashable.
    if not isinstance(os, str) or os not in METRIC_OS:
        errors["Os"] = ["The os must be ios or android."]
    if not isinstance(event, str) or event not in events:
        errors["Event"] = ["The event is not one the server collects."]
    version = body.get("version", "")
    if version is None:
        version = ""
    if not isinstance(version, str) or len(version) > 32:
        errors["Version"] = ["The version must be text of at most 32 characters."]
    elif not is_text(version):
        errors["Version"] = [TEXT_MESSAGE]
    # The plugin attaches an object to CONTACT_NOTIFICATION and LOG_ERROR; only the event is
    # counted, so the payload is accepted and not kept.
    if body.get("payload") is not None and not isinstance(body.get("payload"), dict):
        errors["Payload"] = ["The payload must be an object."]
    if errors:
        raise ValidationError(errors)
    return MetricEvent(os=str(os), event=str(event), version=str(version))


def parse_callback(body: Mapping[str, Any]) -> CallbackRequest:
    return CallbackRequest(
        phone=parse_phone(body),
        first_name=_optional_text(body, "firstName", "FirstName", 50),
        last_name=_optional_text(body, "lastName", "LastName", 50),
        contact_notes=_optional_text(body, "contactNotes", "ContactNotes", 255, multiline=True),
    )


# ---------------------------------------------------------------------------- key upload


def parse_upload(body: Mapping[str, Any], platforms: Sequence[str], rules: KeyRules) -> Upload:
    """``POST /exposures``: the token, the keys (shape only) and the attestation.

    Raises ``ValidationError`` naming every bad field; rules that need the clock are
    ``validate_keys``.
    """
    errors: dict[str, list[str]] = {}
    token: uuid.UUID | None = None
    raw_token = body.get("token")
    try:
        token = uuid.UUID(raw_token) if isinstance(raw_token, str) else None
    except ValueError:
        token = None
    if token is None:
        errors["Token"] = ["The token must be a UUID."]
    platform = body.get("platform")
    if not isinstance(platform, str) or platform not in PLATFORMS or platform not in platforms:
        errors["Platform"] = ["The platform is not supported."]
    payload = body.get("deviceVerificationPayload")
    if not isinstance(payload, str) or len(payload) > 65_536 or not is_text(payload):
        errors["DeviceVerificationPayload"] = ["The device verification payload is required."]
    keys = _parse_keys(body.get("exposures"), rules, errors)
    if errors or token is None:
        raise ValidationError(errors)
    return Upload(
        token=token,
        keys=keys,
        platform=str(platform),
        device_verification_payload=str(payload),
    )


@dataclass(frozen=True)
class KeyFields:
    """A contract's JSON names of a key's four fields (COVID Green's and Google's differ)."""

    key_data: str
    rolling_start_number: str
    rolling_period: str
    transmission_risk: str
    # Google's transmissionRisk is optional (omitted means 0); COVID Green's is required.
    risk_optional: bool = False


COVID_GREEN_KEY = KeyFields(
    "keyData", "rollingStartNumber", "rollingPeriod", "transmissionRiskLevel"
)


def parse_key(item: object, fields: KeyFields) -> tuple[ExposureKey | None, dict[str, str]]:
    """One uploaded key's shape, by either contract: the key, or ``None`` and a message per
    bad field (keyed ``KeyData``, ``RollingStartNumber``, ``RollingPeriod``,
    ``TransmissionRiskLevel``; messages never quote the value)."""
    if not isinstance(item, dict):
        return None, {"": "Each key must be an object."}
    problems: dict[str, str] = {}
    key_data = _key_bytes(item.get(fields.key_data))
    if key_data is None:
        problems["KeyData"] = f"The key must be {KEY_LENGTH} bytes in base64."
    start = _integer(item.get(fields.rolling_start_number), 0, 2**31 - 1)
    if start is None:
        problems["RollingStartNumber"] = "The rolling start number is invalid."
    period = _integer(item.get(fields.rolling_period), 1, MAX_ROLLING_PERIOD)
    if period is None:
        problems["RollingPeriod"] = (
            f"The rolling period must be between 1 and {MAX_ROLLING_PERIOD}."
        )
    raw_risk = item.get(fields.transmission_risk)
    risk = _integer(
        0 if raw_risk is None and fields.risk_optional else raw_risk, 0, MAX_TRANSMISSION_RISK
    )
    if risk is None:
        problems["TransmissionRiskLevel"] = (
            f"The transmission risk level must be between 0 and {MAX_TRANSMISSION_RISK}."
        )
    if key_data is None or start is None or period is None or risk is None:
        return None, problems
    return ExposureKey(key_data, start, period, risk), {}


def _parse_keys(
    raw: object, rules: KeyRules, errors: dict[str, list[str]]
) -> tuple[ExposureKey, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= rules.max_keys:
        errors["Exposures"] = [f"Send between 1 and {rules.max_keys} keys."]
        return ()
    keys = []
    for index, item in enumerate(raw):
        key, problems = parse_key(item, COVID_GREEN_KEY)
        for name, message in problems.items():
            errors[f"Exposures[{index}]" + (f".{name}" if name else "")] = [message]
        if key is not None:
            keys.append(key)
    return tuple(keys)


def _key_bytes(value: object) -> bytes | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == KEY_LENGTH else None


def _integer(value: object, minimum: int, maximum: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not minimum <= value <= maximum:
        return None
    return value


def upload_digest(keys: Sequence[ExposureKey]) -> bytes:
    """SHA-256 over an upload's keys in key order: the same keys give the same digest
    whatever order the phone sent them in (a retry of a lost answer is recognised by it)."""
    digest = hashlib.sha256()
    for key in sorted(keys, key=lambda k: k.key_data):
        digest.update(key.key_data)
        digest.update(
            b"%d,%d,%d;"
            % (key.rolling_start_number, key.rolling_period, key.transmission_risk_level)
        )
    return digest.digest()


def interval_number(moment: datetime) -> int:
    """The 10-minute interval number of ``moment`` (the EN framework's clock)."""
    return int(moment.timestamp()) // INTERVAL_SECONDS


def key_age_problem(key: ExposureKey, rules: KeyRules, now: datetime) -> str | None:
    """Why one key is refused by the clock (it starts in the future, or it stopped being
    valid more than ``max_age_days`` ago), or ``None``."""
    if key.rolling_start_number > interval_number(now):
        return "The key starts in the future."
    if key.end_interval <= interval_number(now - timedelta(days=rules.max_age_days)):
        return f"The key expired more than {rules.max_age_days} days ago."
    return None


def key_set_problems(keys: Sequence[ExposureKey], rules: KeyRules) -> list[str]:
    """Why a set of keys is refused as a whole: more than ``max_keys_per_start_interval``
    keys share a start interval (a phone may reissue today's key), or keys with different
    starts overlap."""
    problems = []
    by_start: dict[int, int] = {}
    for key in keys:
        by_start[key.rolling_start_number] = by_start.get(key.rolling_start_number, 0) + 1
    if any(count > rules.max_keys_per_start_interval for count in by_start.values()):
        problems.append(
            f"At most {rules.max_keys_per_start_interval} keys may share a start interval."
        )
    previous_end: int | None = None
    for start in sorted(by_start):
        if previous_end is not None and start < previous_end:
            problems.append("Keys with different starts overlap.")
            break
        ends = [k.end_interval for k in keys if k.rolling_start_number == start]
        previous_end = max(ends) if previous_end is None else max(previous_end, *ends)
    return problems


def validate_keys(keys: Sequence[ExposureKey], rules: KeyRules, now: datetime) -> None:
    """Google's key-server rules that need the clock or the whole set: ``key_age_problem``
    for each key and ``key_set_problems``. Raises ``ValidationError`` naming every
    offending key."""
    errors: dict[str, list[str]] = {}
    for index, key in enumerate(keys):
        problem = key_age_problem(key, rules, now)
        if problem is not None:
            errors[f"Exposures[{index}].RollingStartNumber"] = [problem]
    problems = key_set_problems(keys, rules)
    if problems:
        errors["Exposures"] = problems
    if errors:
        raise ValidationError(errors)


def days_since_onset(rolling_start_number: int, symptom_onset: date) -> int:
    """Days from the onset date to the UTC day the key started (what phones score by)."""
    started = datetime.fromtimestamp(rolling_start_number * INTERVAL_SECONDS, UTC).date()
    return (started - symptom_onset).days


def keys_to_store(
    keys: Sequence[ExposureKey],
    *,
    symptom_onset: date,
    report_type: int,
    infectious_days: frozenset[int],
) -> list[StoredKey]:
    """The keys worth publishing, each with its days since symptom onset.

    A key is kept exactly when the served exposure configuration scores its day since onset
    as infectious (``client_config.infectious_days``): phones ignore every other key, so
    publishing it would only spread a person's keys for nothing.
    """
    stored = []
    for key in keys:
        days = days_since_onset(key.rolling_start_number, symptom_onset)
        if days not in infectious_days:
            continue
        stored.append(
            StoredKey(
                key_data=key.key_data,
                rolling_start_number=key.rolling_start_number,
                rolling_period=key.rolling_period,
                transmission_risk_level=key.transmission_risk_level,
                report_type=report_type,
                days_since_onset=days,
            )
        )
    return stored
