"""Pure rules of the two documents phones read from the ENF API (CLIENTS.md, "ENF API").

- The exposure configuration (``GET /settings/exposures``), decoded by the exposure-
  notification plugin: iOS (Swift ``Decodable``) fails the whole document on a missing
  required field or a wrong JSON type; Android (Gson into a Kotlin data class) applies no
  Kotlin defaults, so every field must be sent with its declared type. One document serves
  both platforms; each ignores the other's fields.
- The notification settings (``GET /settings/notification``), read by the app by field name:
  a missing field silently switches a feature off (no alert, no link, no reminder).

Both are operator content that changes per stage without a deployment (``client_config_store``
reads them from Parameter Store); the shipped defaults and every operator document pass the
same checks here before a phone sees them. ``infectious_days`` is the key-upload rule that
follows from the served configuration, so the keys a case uploads and the way phones score
them never disagree.

No I/O here. Each ``*_problems`` function returns every problem at once (empty: valid).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------------------- JSON types

INT = "integer"
NUMBER = "number"
BOOL = "boolean"
INT_ARRAY = "array of integers"
NUMBER_ARRAY = "array of numbers"


@dataclass(frozen=True)
class Field:
    """One field of the exposure configuration: its JSON type, array length and bounds.

    ``android_int``: Android's class declares a Kotlin ``Int`` where CLIENTS.md says
    "number" (the four v1 weights), and Gson refuses a fraction there.
    """

    kind: str
    length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    android_int: bool = False
    v2: bool = False


# ENRiskScore and ENRiskLevelValue are UInt8 on iOS; the framework's level values are 0..8.
_LEVELS = Field(INT_ARRAY, 8, 0, 8)
# Apple's v1 weights are percentages 0..100; ENv2 weights 0..250 (percent).
_V1_WEIGHT = Field(NUMBER, None, 0, 100, android_int=True)
_V2_WEIGHT = Field(NUMBER, None, 0, 250, v2=True)

EXPOSURE_FIELDS: Mapping[str, Field] = {
    "minimumRiskScore": Field(INT, None, 0, 255),
    "attenuationLevelValues": _LEVELS,
    "attenuationWeight": _V1_WEIGHT,
    "daysSinceLastExposureLevelValues": _LEVELS,
    "daysSinceLastExposureWeight": _V1_WEIGHT,
    "durationLevelValues": _LEVELS,
    "durationWeight": _V1_WEIGHT,
    "transmissionRiskLevelValues": _LEVELS,
    "transmissionRiskWeight": _V1_WEIGHT,
    "durationAtAttenuationThresholds": Field(INT_ARRAY, 2, 0, 255),
    "thresholdWeightings": Field(NUMBER_ARRAY, 3, 0),
    "timeThreshold": Field(INT, None, 0, 24 * 60),
    # Android's `limit` on GET /exposures/ (a missing one arrives as limit=0); iOS's numFiles.
    "numFilesAndroid": Field(INT, None, 1, 1000),
    "numFilesiOS": Field(INT, None, 1, 1000),
    "immediateDurationWeight": _V2_WEIGHT,
    "nearDurationWeight": _V2_WEIGHT,
    "mediumDurationWeight": _V2_WEIGHT,
    "otherDurationWeight": _V2_WEIGHT,
    "infectiousnessStandardWeight": _V2_WEIGHT,
    "infectiousnessHighWeight": _V2_WEIGHT,
    "reportTypeConfirmedTestWeight": _V2_WEIGHT,
    "reportTypeConfirmedClinicalDiagnosisWeight": _V2_WEIGHT,
    "reportTypeSelfReportedWeight": _V2_WEIGHT,
    "reportTypeRecursiveWeight": _V2_WEIGHT,
    # ENDiagnosisReportType's raw values (UInt32 on iOS): unknown 0 .. revoked 5.
    "reportTypeNoneMap": Field(INT, None, 0, 5, v2=True),
    "daysSinceLastExposureThreshold": Field(INT, None, 0, 14, v2=True),
    "minimumRiskScoreFullRange": Field(NUMBER, None, 0, v2=True),
    "infectiousnessForDaysSinceOnsetOfSymptoms": Field(INT_ARRAY, 29, 0, 2, v2=True),
    "attenuationDurationThresholds": Field(INT_ARRAY, 3, 0, 255, v2=True),
    "v2Mode": Field(BOOL),
    "contiguousMode": Field(BOOL),
}

# Days since symptom onset the framework scores: -14 .. +14, the array's order.
FIRST_ONSET_DAY = -14
LAST_ONSET_DAY = 14
# ENInfectiousness: none 0 (the phone ignores the key), standard 1, high 2.
INFECTIOUSNESS_NONE = 0


def _is_int(value: Any) -> bool:
    # Both decoders take an integral number for an integer (Swift: 15.0 fits Int; Gson:
    # nextInt() accepts 15.0); anything else, or a boolean, fails them.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _field_problems(name: str, field: Field, value: Any) -> list[str]:
    if field.kind == BOOL:
        return [] if isinstance(value, bool) else [f"{name} must be a {BOOL}"]
    if field.kind in (INT, NUMBER):
        items: Sequence[Any] = [value]
        is_item = _is_int if field.kind == INT or field.android_int else _is_number
        kind = INT if field.android_int else field.kind
        if field.android_int and _is_number(value) and not _is_int(value):
            return [f"{name} must be a whole number (Android declares an Int)"]
        if not is_item(value):
            return [f"{name} must be a JSON {kind}"]
    else:
        if not isinstance(value, list):
            return [f"{name} must be a JSON array, not {type(value).__name__}"]
        if field.length is not None and len(value) != field.length:
            return [f"{name} must have exactly {field.length} items, has {len(value)}"]
        is_item = _is_int if field.kind == INT_ARRAY else _is_number
        if not all(is_item(item) for item in value):
            return [f"{name} must be an {field.kind}"]
        items = value
    low, high = field.minimum, field.maximum
    if any((low is not None and v < low) or (high is not None and v > high) for v in items):
        bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        return [f"{name} must be {bounds}"]
    return []


def exposure_config_problems(document: Any) -> list[str]:
    """Why phones would fail or misread this exposure configuration (empty: they will not).

    Every field of CLIENTS.md's table must be there (Android declares them all), with its
    JSON type, length and bounds; nothing else may be there (a field the plugin does not
    read, like ``reportTypeWeights``, silently does nothing).
    """
    if not isinstance(document, dict):
        return ["the exposure configuration must be a JSON object"]
    problems: list[str] = []
    for name, field in EXPOSURE_FIELDS.items():
        if name not in document or document[name] is None:
            problems.append(f"{name} is missing")
        else:
            problems.extend(_field_problems(name, field, document[name]))
    unknown = sorted(set(document) - set(EXPOSURE_FIELDS))
    if unknown:
        problems.append(f"fields the plugin does not read: {', '.join(unknown)}")
    return problems


def infectious_days(document: Mapping[str, Any]) -> frozenset[int]:
    """Days since onset whose keys phones score (infectiousness not ``none``).

    The upload keeps a key exactly when its day since onset is one of these: a key the
    configuration scores as not infectious (or outside -14..14, which the framework never
    scores) would only be published for phones to ignore. ``document`` must be valid.
    """
    values = document["infectiousnessForDaysSinceOnsetOfSymptoms"]
    return frozenset(
        day
        for day, value in zip(range(FIRST_ONSET_DAY, LAST_ONSET_DAY + 1), values, strict=True)
        if int(value) != INFECTIOUSNESS_NONE
    )


# ---------------------------------------------------------------------------- notification

# The app caps the plugin's risk score at this before it picks an alert bucket.
MAX_ALERT_SCORE = 540_000
MIN_ALERT_SCORE = 0
DEEP_LINKS = (
    "nzcovidtracer://dashboard/today",
    "nzcovidtracer://dashboard/resources",
    "nzcovidtracer://nhi",
    "nzcovidtracer://diary",
    "nzcovidtracer://manualEntry",
)
_HTTPS = re.compile(r"https://\S{1,2040}")

NOTIFICATION_FIELDS = {
    "configurations": list,
    "testLocationsLink": str,
    "callbackEnabled": bool,
    "announcements": list,
    "reminderNotificationConfig": dict,
    "vaccinePassLinkDisabled": dict,
}
BUCKET_FIELDS = {
    "minRiskScore": int,
    "maxRiskScore": int,
    "alertTitle": str,
    "alertMessage": str,
    "alertExpiresInDays": int,
    "systemNotification": str,
    "linkUrl": str,
    "callbackEnabled": bool,
}
ANNOUNCEMENT_FIELDS = {
    "title": str,
    "message": str,
    "linkText": str,
    "link": str,
    "date": str,
    "createdAt": str,
    "enabled": bool,
}
REMINDER_FIELDS = {
    "timingInMinutes": int,
    "notificationMessage": str,
    "dashboardTitle": str,
    "dashboardBody": str,
    "diaryTitle": str,
    "diaryBody": str,
}
VACCINE_PASS_FIELDS = {"ios": bool, "android": bool}


def _object_problems(
    where: str,
    value: Any,
    fields: Mapping[str, type],
    optional: Mapping[str, type] | None = None,
) -> list[str]:
    """Exactly ``fields`` (plus any of ``optional``), each of its JSON type."""
    if not isinstance(value, dict):
        return [f"{where} must be a JSON object"]
    optional = optional or {}
    problems = []
    for name, kind in {**fields, **optional}.items():
        if name not in value:
            if name in fields:
                problems.append(f"{where}.{name} is missing")
            continue
        item = value[name]
        ok = _is_int(item) if kind is int else isinstance(item, kind)
        if kind is not bool and isinstance(item, bool):
            ok = False
        if not ok:
            problems.append(f"{where}.{name} must be a JSON {_json_name(kind)}")
    unknown = sorted(set(value) - set(fields) - set(optional))
    if unknown:
        problems.append(f"{where} has fields the app does not read: {', '.join(unknown)}")
    return problems


def _json_name(kind: type) -> str:
    return {int: "integer", str: "string", bool: "boolean", list: "array", dict: "object"}[kind]


def notification_problems(document: Any) -> list[str]:
    """Why the app would silently lose a feature with this document (empty: it will not).

    The shape is exactly CLIENTS.md's; beyond types: the alert buckets cover every score
    the app can look up (0 .. 540000, no gaps), links are https, deep links are the app's,
    the reminder configuration has a ``version`` (the app ignores it without one).
    """
    problems = _object_problems("notification", document, NOTIFICATION_FIELDS)
    if not isinstance(document, dict):
        return problems
    buckets = document.get("configurations")
    if isinstance(buckets, list):
        problems.extend(_bucket_problems(buckets))
    link = document.get("testLocationsLink")
    if isinstance(link, str) and not _HTTPS.fullmatch(link):
        problems.append("testLocationsLink must be an https URL")
    announcements = document.get("announcements")
    if isinstance(announcements, list):
        for index, item in enumerate(announcements):
            where = f"announcements[{index}]"
            problems.extend(_object_problems(where, item, ANNOUNCEMENT_FIELDS, {"deepLink": str}))
            if isinstance(item, dict) and item.get("deepLink", DEEP_LINKS[0]) not in DEEP_LINKS:
                problems.append(f"{where}.deepLink must be one of {', '.join(DEEP_LINKS)}")
    reminders = document.get("reminderNotificationConfig")
    if isinstance(reminders, dict):
        problems.extend(
            _object_problems(
                "reminderNotificationConfig",
                reminders,
                {"version": int, "notifications": list},
            )
        )
        for index, item in enumerate(reminders.get("notifications") or []):
            where = f"reminderNotificationConfig.notifications[{index}]"
            problems.extend(_object_problems(where, item, REMINDER_FIELDS))
            timing = item.get("timingInMinutes") if isinstance(item, dict) else None
            if timing is not None and _is_int(timing) and timing < 1:
                problems.append(f"{where}.timingInMinutes must be at least 1")
    vaccine_pass = document.get("vaccinePassLinkDisabled")
    if isinstance(vaccine_pass, dict):
        problems.extend(
            _object_problems("vaccinePassLinkDisabled", vaccine_pass, VACCINE_PASS_FIELDS)
        )
    return problems


def _bucket_problems(buckets: Sequence[Any]) -> list[str]:
    problems: list[str] = []
    ranges: list[tuple[float, float]] = []
    for index, bucket in enumerate(buckets):
        where = f"configurations[{index}]"
        found = _object_problems(where, bucket, BUCKET_FIELDS)
        problems.extend(found)
        if found:
            continue
        low, high = bucket["minRiskScore"], bucket["maxRiskScore"]
        if low > high:
            problems.append(f"{where}.minRiskScore must not exceed maxRiskScore")
        if bucket["alertExpiresInDays"] < 1:
            problems.append(f"{where}.alertExpiresInDays must be at least 1")
        if not _HTTPS.fullmatch(bucket["linkUrl"]):
            problems.append(f"{where}.linkUrl must be an https URL")
        ranges.append((low, high))
    if not buckets:
        problems.append("configurations must hold at least one alert bucket")
    elif not problems:
        gap = uncovered_score(ranges)
        if gap is not None:
            problems.append(
                f"configurations leave a gap in risk scores at {gap:g} (the buckets must cover "
                f"{MIN_ALERT_SCORE} to {MAX_ALERT_SCORE} without gaps, the range the app looks up)"
            )
    return problems


def uncovered_score(ranges: Sequence[tuple[float, float]]) -> float | None:
    """Where [0, 540000] first escapes the ``(min, max)`` ranges (the scores just above the
    returned one, or 0 itself when no range starts at 0), or None when they cover it all.

    Scores are real numbers (ENv2 sums weighted minutes), so two buckets must meet or
    overlap: [0, 100] and [101, …] leave 100.5 without an alert.
    """
    reach: float | None = None
    for low, high in sorted(ranges):
        if reach is None:
            if low > MIN_ALERT_SCORE:
                return MIN_ALERT_SCORE
            reach = high
        elif low > reach:
            return reach
        else:
            reach = max(reach, high)
        if reach >= MAX_ALERT_SCORE:
            return None
    return MIN_ALERT_SCORE if reach is None else reach
