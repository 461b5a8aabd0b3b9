"""Pure rules of Google's key-server contract, ``POST /v1/publish``: the request, the
validation table, the ``tekmac`` HMAC, report types and revision.

Facts are google/exposure-notifications-server's, each cited to its file:
``pkg/api/v1/exposure_types.go`` (fields, error codes), ``internal/publish/model/
exposure_model.go`` (TransformPublish, Revise, ReportTypeTransmissionRisk),
``pkg/verification/utils.go`` (the HMAC), ``internal/publish/publish.go`` (the answers). The
per-key shape and clock rules are ``enfkeys.model``'s, shared with COVID Green's upload.
No I/O and no clock: ``now`` is a parameter.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from covidtracer.enffiles.model import INTERVAL_SECONDS
from covidtracer.enfkeys import model as keys
from covidtracer.enfkeys.model import ExposureKey, KeyFields, KeyRules
from covidtracer.errors import DomainError
from covidtracer.verification.model import CONFIRMED, LIKELY, NEGATIVE, REPORT_TYPES, USER_REPORT

# pkg/api/v1/exposure_types.go: the error codes of /v1/publish.
UNKNOWN_HEALTH_AUTHORITY_ID = "unknown_health_authority_id"
UNABLE_TO_LOAD_HEALTH_AUTHORITY = "unable_to_load_health_authority"
CERTIFICATE_INVALID = "health_authority_verification_certificate_invalid"
BAD_REQUEST = "bad_request"
INTERNAL_ERROR = "internal_error"
MISSING_REVISION_TOKEN = "missing_revision_token"  # noqa: S105 - an error code
INVALID_REVISION_TOKEN = "invalid_revision_token"  # noqa: S105 - an error code
KEY_ALREADY_REVISED = "key_already_revised"
INVALID_REPORT_TYPE_TRANSITION = "invalid_report_type_transition"
PARTIAL_FAILURE = "partial_failure"

# pkg/api/v1/exposure_types.go: the Publish request's JSON names, and an ExposureKey's.
PUBLISH_FIELDS = (
    "temporaryExposureKeys",
    "healthAuthorityID",
    "verificationPayload",
    "hmacKey",
    "symptomOnsetInterval",
    "traveler",
    "revisionToken",
    "padding",
)
GOOGLE_KEY = KeyFields(
    "key", "rollingStartNumber", "rollingPeriod", "transmissionRisk", risk_optional=True
)
_KEY_FIELDS = {
    name.lower() for name in ("key", "rollingStartNumber", "rollingPeriod", "transmissionRisk")
}

# pkg/api/v1/verification_types.go: TransmissionRisk* by report type, for keys sent with 0.
_RISK_BY_REPORT_TYPE = {CONFIRMED: 2, LIKELY: 4, NEGATIVE: 6}

_INT32 = (-(2**31), 2**31 - 1)


class PublishApiError(DomainError, status=400, title="The publish request was refused."):
    """An answer of /v1/publish in its shape (PublishResponse): ``error`` (a message that
    never quotes the input), ``code``, ``warnings`` when there are any, ``padding``."""

    def __init__(self, status: int, code: str, message: str, warnings: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status  # type: ignore[misc]
        self.code = code
        self.message = message
        self.warnings = list(warnings)
        self.padding = ""
        self.retry_after: int | None = 5 if status >= 500 else None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.warnings:
            body["warnings"] = self.warnings
        if self.padding:
            body["padding"] = self.padding
        return body

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


def refused(status: int, message: str) -> PublishApiError:
    """A body Google's decoder refuses (415, 413, 400): ``bad_request``."""
    return PublishApiError(status, BAD_REQUEST, message)


@dataclass(frozen=True)
class SentKey:
    """One key as the phone sent it: the text the HMAC covers, and the key if its values
    pass the shape rules (else the reason it is dropped)."""

    text: str
    rolling_start_number: int
    rolling_period: int
    transmission_risk: int
    key: ExposureKey | None
    problem: str | None


@dataclass(frozen=True)
class PublishRequest:
    keys: tuple[SentKey, ...]
    health_authority_id: str
    verification_payload: str
    hmac_key: str
    symptom_onset_interval: int
    traveler: bool
    revision_token: str


def parse_publish(body: Mapping[str, Any]) -> PublishRequest:
    """The decoded body as Go's encoding/json would fill ``v1.Publish``: a value of the
    wrong JSON type, or a key object with an unknown field, is a 400 ``bad_request``; a key
    whose values break the shape rules is kept here with its ``problem`` (dropped later,
    a partial failure)."""
    raw_keys = body.get("temporaryExposureKeys")
    raw_keys = [] if raw_keys is None else raw_keys  # JSON null leaves Go's slice empty
    # JSON null leaves a Go field at its zero value.
    names = ("healthAuthorityID", "verificationPayload", "hmacKey", "revisionToken", "padding")
    texts = {name: _or(body.get(name), "") for name in names}
    onset = _or(body.get("symptomOnsetInterval"), 0)
    traveler = _or(body.get("traveler"), False)
    if (
        not isinstance(raw_keys, list)
        or not all(isinstance(value, str) for value in texts.values())
        or not _is_int(onset, *_INT32)
        or not isinstance(traveler, bool)
    ):
        raise refused(400, "invalid value")
    return PublishRequest(
        keys=tuple(_sent_key(item) for item in raw_keys),
        health_authority_id=texts["healthAuthorityID"],
        verification_payload=texts["verificationPayload"],
        hmac_key=texts["hmacKey"],
        symptom_onset_interval=int(onset),
        traveler=traveler,
        revision_token=texts["revisionToken"],
    )


def _or(value: Any, zero: Any) -> Any:
    return zero if value is None else value


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _sent_key(item: object) -> SentKey:
    if not isinstance(item, dict) or any(name.lower() not in _KEY_FIELDS for name in item):
        raise refused(400, "unknown field")
    item = {_canonical(name): value for name, value in item.items()}
    text = item.get("key", "")
    start, period, risk = (item.get(n, 0) for n in GOOGLE_KEY_NUMBERS)
    if not isinstance(text, str) or not all(_is_int(v, *_INT32) for v in (start, period, risk)):
        raise refused(400, "invalid value")
    key, problems = keys.parse_key(item, GOOGLE_KEY)
    problem = "; ".join(problems.values()) if problems else None
    return SentKey(text, int(start), int(period), int(risk), key, problem)


GOOGLE_KEY_NUMBERS = ("rollingStartNumber", "rollingPeriod", "transmissionRisk")


def _canonical(name: str) -> str:
    for known in ("key", *GOOGLE_KEY_NUMBERS):
        if name.lower() == known.lower():
            return known
    return name


# ---------------------------------------------------------------------------- tekmac


def tekmac_candidates(sent: Sequence[SentKey], secret: bytes) -> list[bytes]:
    """pkg/verification/utils.go CalculateAllAllowedExposureKeyHMAC: HMAC-SHA256 under the
    device's secret over the keys sorted by their base64 text, each
    ``key.rollingStartNumber.rollingPeriod.transmissionRisk``, joined by ``,``; and, when
    every transmission risk is 0, the same without the risk (``key.start.period``)."""
    ordered = sorted(sent, key=lambda k: k.text)
    four = ",".join(
        f"{k.text}.{k.rolling_start_number}.{k.rolling_period}.{k.transmission_risk}"
        for k in ordered
    )
    macs = [hmac.new(secret, four.encode(), hashlib.sha256).digest()]
    if all(k.transmission_risk == 0 for k in ordered):
        three = ",".join(f"{k.text}.{k.rolling_start_number}.{k.rolling_period}" for k in ordered)
        macs.append(hmac.new(secret, three.encode(), hashlib.sha256).digest())
    return macs


def tekmac_matches(sent: Sequence[SentKey], secret: bytes, tekmac: bytes) -> bool:
    """Whether ``tekmac`` is one of ``tekmac_candidates`` (compared in constant time)."""
    found = False
    for candidate in tekmac_candidates(sent, secret):
        found |= hmac.compare_digest(candidate, tekmac)
    return found


# ---------------------------------------------------------------------------- the validation table


@dataclass(frozen=True)
class OnsetRules:
    """``PublishSettings``' symptom-onset numbers."""

    max_symptom_onset_days: int
    max_onset_report_days: int
    default_onset_days_ago: int


@dataclass(frozen=True)
class NewKey:
    """A key accepted for storing (or revising), with what the certificate adds."""

    key: ExposureKey
    report_type: int
    days_since_onset: int


@dataclass
class Transformed:
    keys: list[NewKey] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Why keys were dropped: a partial failure when some keys remain, else the 400.
    errors: list[str] = field(default_factory=list)


def interval_number(moment: datetime) -> int:
    return int(moment.timestamp()) // INTERVAL_SECONDS


def _midnight_interval(interval: int) -> int:
    return interval // keys.MAX_ROLLING_PERIOD * keys.MAX_ROLLING_PERIOD


def days_between(a: int, b: int) -> int:
    """exposure_model.go DaysBetweenIntervals: whole UTC days from ``a``'s day to ``b``'s."""
    return (_midnight_interval(b) - _midnight_interval(a)) // keys.MAX_ROLLING_PERIOD


def onset_interval(published: int, certified: int | None, rules: OnsetRules, now: datetime) -> int:
    """exposure_model.go TransformPublish: the publish's ``symptomOnsetInterval`` if it is
    before now and within ``max_onset_report_days`` (from that day's midnight), else the
    certificate's, else ``default_onset_days_ago`` before now."""
    current = interval_number(now)
    earliest = _midnight_interval(
        interval_number(now - timedelta(days=rules.max_onset_report_days))
    )
    for candidate in (published, certified or 0):
        if earliest <= candidate < current:
            return candidate
    return interval_number(now - timedelta(days=rules.default_onset_days_ago))


def transmission_risk(report_type: str, sent: int) -> int:
    """exposure_model.go ReportTypeTransmissionRisk: a risk the phone sent wins; else by
    report type (confirmed 2, likely 4, negative 6, otherwise 0)."""
    return sent if sent != 0 else _RISK_BY_REPORT_TYPE.get(report_type, 0)


def transform(
    sent: Sequence[SentKey],
    report_type: str,
    onset: int,
    key_rules: KeyRules,
    onset_rules: OnsetRules,
    now: datetime,
) -> Transformed:
    """exposure_model.go TransformPublish on our rules: 1..``max_keys`` keys (else a 400);
    a key with a bad value, a future start or older than ``max_age_days`` is dropped (a
    partial failure); a key more than ``max_symptom_onset_days`` from the onset is dropped
    with a warning; keys sharing a start interval beyond the limit, or overlapping, refuse
    the whole publish (``errors`` with no ``keys``). Keys that are still valid are stored
    too: the export embargoes each key until 2 h after its validity ends."""
    out = Transformed()
    if not sent:
        out.errors.append("no exposure keys in publish request")
        return out
    if len(sent) > key_rules.max_keys:
        out.errors.append(
            f"too many exposure keys in publish: {len(sent)},"
            f" max of {key_rules.max_keys} is allowed"
        )
        return out
    for index, item in enumerate(sent):
        problem = item.problem
        if item.key is not None and problem is None:
            problem = keys.key_age_problem(item.key, key_rules, now)
        if item.key is None or problem is not None:
            out.errors.append(f"key {index} cannot be imported: {problem}")
            continue
        days = days_between(onset, item.key.rolling_start_number)
        if abs(days) > onset_rules.max_symptom_onset_days:
            out.warnings.append(
                f"key {index} symptom onset is too large, {abs(days)} > "
                f"{onset_rules.max_symptom_onset_days} - saving without this key"
            )
            continue
        key = ExposureKey(
            item.key.key_data,
            item.key.rolling_start_number,
            item.key.rolling_period,
            transmission_risk(report_type, item.key.transmission_risk_level),
        )
        out.keys.append(NewKey(key, REPORT_TYPES[report_type], days))
    problems = keys.key_set_problems([k.key for k in out.keys], key_rules)
    if problems:
        out.errors, out.keys = problems, []
    return out


# ---------------------------------------------------------------------------- revision


@dataclass(frozen=True)
class StoredState:
    """A key already in the database, as revision reads it."""

    rolling_start_number: int
    rolling_period: int
    report_type: int
    revised_report_type: int | None


def valid_transition(previous: str, new: str) -> bool:
    """exposure_model.go ValidReportTypeTransition: likely may become confirmed or negative;
    a user report may become confirmed, likely or negative; nothing else changes."""
    if previous == LIKELY:
        return new in (CONFIRMED, NEGATIVE)
    if previous == USER_REPORT:
        return new in (CONFIRMED, LIKELY, NEGATIVE)
    return False


REVISED = "revised"
UNCHANGED = "unchanged"


def revise(stored: StoredState, new_report_type: int) -> str:
    """exposure_model.go Revise: ``UNCHANGED`` when the key already says this, ``REVISED``
    for a valid transition; raises ``PublishApiError`` (``key_already_revised``,
    ``invalid_report_type_transition``) otherwise."""
    names = {number: name for name, number in REPORT_TYPES.items()}
    if stored.report_type == new_report_type or stored.revised_report_type == new_report_type:
        return UNCHANGED
    if stored.revised_report_type is not None:
        raise PublishApiError(400, KEY_ALREADY_REVISED, "key was already revised")
    previous, new = names.get(stored.report_type, LIKELY), names[new_report_type]
    if not valid_transition(previous, new):
        message = f"invalid report type transition: cannot transition from {previous!r} to {new!r}"
        raise PublishApiError(400, INVALID_REPORT_TYPE_TRANSITION, message)
    return REVISED


def certificate_digest(verification_payload: str) -> bytes:
    """What a publish remembers its certificate by (never the certificate itself)."""
    return hashlib.sha256(verification_payload.encode("utf-8", "surrogatepass")).digest()


def retained(start: int, period: int, now: datetime, max_age_days: int) -> bool:
    """publish.go: a revision token keeps a key while it is young enough to be published
    (``MAX_INTERVAL_AGE_ON_PUBLISH``, our ``max_key_age_days``)."""
    return start + period >= interval_number(now - timedelta(days=max_age_days))


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
