"""Decoders that read the backend's answers the way the real clients do (CLIENTS.md).

A test oracle for the contract tier, written from CLIENTS.md's rules and nothing of the
server's code (it never ships):

- ``ios_*``: Swift ``Decodable`` — a non-optional field missing or ``null``, or any field of
  the wrong JSON type, fails the whole document; an ``Int`` takes only an integral number,
  a ``Bool`` only ``true``/``false``, a ``String`` only a string.
- ``android_*``: Gson into a Kotlin data class — no Kotlin defaults, so every declared
  field must be sent with its declared type (a missing ``Int`` would arrive as 0, a
  missing array as ``null``).
- ``app_*``: the React Native app (axios, yup) reads fields by name; a missing field
  silently switches a feature off, so the decoder treats it as the failure it is.

Each decoder returns what the client would go on with, or raises ``Refused`` saying what a
phone would fail on. Beyond types they check the facts CLIENTS.md states (array lengths,
``numFiles`` ≥ 1, ``v2Mode`` with the whole ENv2 set, alert buckets for every score).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from typing import Any


class Refused(AssertionError):
    """The client would fail on (or silently ignore) this answer."""


# ---------------------------------------------------------------------------- JSON types


def _int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string(value: Any) -> bool:
    return isinstance(value, str)


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _array(item: Any, length: int | None = None) -> Any:
    def check(value: Any) -> bool:
        return (
            isinstance(value, list)
            and (length is None or len(value) == length)
            and all(item(v) for v in value)
        )

    return check


_TYPE_NAMES = {
    _int: "Int",
    _number: "Double",
    _string: "String",
    _boolean: "Bool",
}


def _decode(where: str, document: Any, fields: Mapping[str, tuple[Any, bool]]) -> dict[str, Any]:
    """Decode ``fields`` (name -> (type check, required)) from the JSON object ``document``."""
    if not isinstance(document, dict):
        raise Refused(f"{where}: expected an object, got {type(document).__name__}")
    decoded: dict[str, Any] = {}
    for name, (check, required) in fields.items():
        value = document.get(name)
        if value is None:
            if required:
                raise Refused(f"{where}.{name}: required, missing")
            continue
        if not check(value):
            kind = _TYPE_NAMES.get(check, "the declared type")
            raise Refused(f"{where}.{name}: {json.dumps(value)[:60]} is not {kind}")
        decoded[name] = value
    return decoded


# ---------------------------------------------------------------------------- ENF tokens


def registration(body: Any) -> str:
    """``POST /register``: the nonce the device attests."""
    return str(_decode("register", body, {"nonce": (_string, True)})["nonce"])


def registration_tokens(body: Any) -> dict[str, Any]:
    """``PUT /register``: the access and refresh tokens the plugin stores."""
    fields = {"token": (_string, True), "refreshToken": (_string, True)}
    return _decode("register", body, fields)


def token(body: Any) -> str:
    """``POST /refresh`` and ``POST /exposures/verify``: ``{"token"}``."""
    return str(_decode("token", body, {"token": (_string, True)})["token"])


# ---------------------------------------------------------------------------- ENF settings

_LEVELS = _array(_int, 8)

# The ENv2 fields: optional in the plugin's iOS struct, all required with ``v2Mode: true``.
ENV2_CHECKS: Mapping[str, Any] = {
    "immediateDurationWeight": _number,
    "nearDurationWeight": _number,
    "mediumDurationWeight": _number,
    "otherDurationWeight": _number,
    "infectiousnessStandardWeight": _number,
    "infectiousnessHighWeight": _number,
    "reportTypeConfirmedTestWeight": _number,
    "reportTypeConfirmedClinicalDiagnosisWeight": _number,
    "reportTypeSelfReportedWeight": _number,
    "reportTypeRecursiveWeight": _number,
    "reportTypeNoneMap": _int,
    "daysSinceLastExposureThreshold": _int,
    "minimumRiskScoreFullRange": _number,
    "infectiousnessForDaysSinceOnsetOfSymptoms": _array(_int, 29),
    "attenuationDurationThresholds": _array(_int, 3),
}
# The plugin's iOS struct (CodableExposureConfiguration), from CLIENTS.md's table.
IOS_EXPOSURE_CONFIG: Mapping[str, tuple[Any, bool]] = {
    "minimumRiskScore": (_int, True),
    "attenuationLevelValues": (_LEVELS, True),
    "attenuationWeight": (_number, True),
    "daysSinceLastExposureLevelValues": (_LEVELS, True),
    "daysSinceLastExposureWeight": (_number, True),
    "durationLevelValues": (_LEVELS, True),
    "durationWeight": (_number, True),
    "transmissionRiskLevelValues": (_LEVELS, True),
    "transmissionRiskWeight": (_number, True),
    "durationAtAttenuationThresholds": (_array(_int, 2), True),
    "thresholdWeightings": (_array(_number, 3), True),
    "timeThreshold": (_int, True),
    "numFilesiOS": (_int, False),
    **{name: (check, False) for name, check in ENV2_CHECKS.items()},
    "v2Mode": (_boolean, False),
    "contiguousMode": (_boolean, False),
}
IOS_NUM_FILES_FALLBACK = 6

# The plugin's Android data class declares the same fields less the two iOS-only ones, plus
# numFilesAndroid: every one required, since Gson applies no Kotlin default.
ANDROID_EXPOSURE_CONFIG: Mapping[str, tuple[Any, bool]] = {
    **{
        name: (check, True)
        for name, (check, _) in IOS_EXPOSURE_CONFIG.items()
        if name not in ("numFilesiOS", "reportTypeNoneMap")
    },
    "numFilesAndroid": (_int, True),
}


def settings_envelope(body: Any) -> Any:
    """``{"exposureConfig": "<JSON string>"}`` (CodableSettings), the string parsed."""
    envelope = _decode("settings", body, {"exposureConfig": (_string, True)})
    try:
        return json.loads(envelope["exposureConfig"])
    except ValueError as error:
        raise Refused(f"settings.exposureConfig is not JSON: {error}") from error


def _env2_complete(where: str, config: Mapping[str, Any], declared: Mapping[str, Any]) -> None:
    """With ``v2Mode: true`` every ENv2 field the platform declares must be sent."""
    if config.get("v2Mode") is True:
        missing = [n for n in ENV2_CHECKS if n in declared and config.get(n) is None]
        if missing:
            raise Refused(f"{where}: v2Mode without {', '.join(missing)}")


def ios_exposure_config(body: Any) -> dict[str, Any]:
    """What the iOS plugin decodes from ``GET /settings/exposures?os=ios``; its ``numFiles``."""
    config = _decode("ios exposureConfig", settings_envelope(body), IOS_EXPOSURE_CONFIG)
    _env2_complete("ios exposureConfig", config, IOS_EXPOSURE_CONFIG)
    num_files = config.get("numFilesiOS", IOS_NUM_FILES_FALLBACK)
    if num_files < 1:
        raise Refused("ios exposureConfig.numFilesiOS: must be at least 1")
    config["numFiles"] = num_files
    return config


def android_exposure_config(body: Any) -> dict[str, Any]:
    """What the Android plugin decodes from ``GET /settings/exposures?os=android``."""
    config = _decode("android exposureConfig", settings_envelope(body), ANDROID_EXPOSURE_CONFIG)
    # Kotlin declares the four v1 weights Int: Gson's nextInt() refuses a fraction.
    for name in (
        "attenuationWeight",
        "daysSinceLastExposureWeight",
        "durationWeight",
        "transmissionRiskWeight",
    ):
        if not _int(config[name]):
            raise Refused(f"android exposureConfig.{name}: {config[name]} is not Int")
    if config["numFilesAndroid"] < 1:
        raise Refused("android exposureConfig.numFilesAndroid: limit would be 0")
    _env2_complete("android exposureConfig", config, ANDROID_EXPOSURE_CONFIG)
    return config


def exposure_files(body: Any) -> list[dict[str, Any]]:
    """``GET /exposures?since=&limit=``: ``[CodableExposureFiles]`` (``id`` Int, ``path``)."""
    if not isinstance(body, list):
        raise Refused("exposures: expected an array")
    files = [
        _decode(f"exposures[{i}]", item, {"id": (_int, True), "path": (_string, True)})
        for i, item in enumerate(body)
    ]
    return files


def next_since(files: Sequence[Mapping[str, Any]], since: int) -> int:
    """Both plugins keep the highest ``id`` seen as the next ``since``."""
    return max([since, *(int(f["id"]) for f in files)])


# ---------------------------------------------------------------------------- notification

MAX_RISK_SCORE = 540_000  # the app caps the plugin's score at this before picking a bucket
DEEP_LINKS = {
    "nzcovidtracer://dashboard/today",
    "nzcovidtracer://dashboard/resources",
    "nzcovidtracer://nhi",
    "nzcovidtracer://diary",
    "nzcovidtracer://manualEntry",
}


def _required(check: Any, *names: str) -> dict[str, tuple[Any, bool]]:
    """Fields the app's decoder declares non-optional, all of one type."""
    return {name: (check, True) for name in names}


_BUCKET = {
    **_required(_int, "minRiskScore", "maxRiskScore", "alertExpiresInDays"),
    **_required(_string, "alertTitle", "alertMessage", "systemNotification", "linkUrl"),
    **_required(_boolean, "callbackEnabled"),
}
_ANNOUNCEMENT = {
    **_required(_string, "title", "message", "linkText", "link", "date", "createdAt"),
    **_required(_boolean, "enabled"),
    "deepLink": (_string, False),
}
_REMINDER = {
    **_required(_number, "timingInMinutes"),
    **_required(
        _string, "notificationMessage", "dashboardTitle", "dashboardBody", "diaryTitle", "diaryBody"
    ),
}


def app_notification_settings(body: Any) -> dict[str, Any]:
    """``GET /settings/notification`` as the app reads it; every feature must be configured."""
    where = "notification"
    document = _decode(
        where,
        body,
        {
            "configurations": (_array(lambda v: isinstance(v, dict)), True),
            "testLocationsLink": (_string, True),
            "callbackEnabled": (_boolean, True),
            "announcements": (_array(lambda v: isinstance(v, dict)), True),
            "reminderNotificationConfig": (lambda v: isinstance(v, dict), True),
            "vaccinePassLinkDisabled": (lambda v: isinstance(v, dict), True),
        },
    )
    if not document["configurations"]:
        raise Refused(f"{where}.configurations: no alert bucket, so no in-app alert")
    for index, bucket in enumerate(document["configurations"]):
        _decode(f"{where}.configurations[{index}]", bucket, _BUCKET)
    for index, item in enumerate(document["announcements"]):
        announcement = _decode(f"{where}.announcements[{index}]", item, _ANNOUNCEMENT)
        if "deepLink" in announcement and announcement["deepLink"] not in DEEP_LINKS:
            raise Refused(f"{where}.announcements[{index}].deepLink: not one the app opens")
    reminders = _decode(
        f"{where}.reminderNotificationConfig",
        document["reminderNotificationConfig"],
        {"version": (_number, True), "notifications": (_array(lambda v: True), True)},
    )
    for index, item in enumerate(reminders["notifications"]):
        _decode(f"{where}.reminderNotificationConfig.notifications[{index}]", item, _REMINDER)
    # A bare boolean reads as "not disabled" on both platforms.
    _decode(
        f"{where}.vaccinePassLinkDisabled",
        document["vaccinePassLinkDisabled"],
        {"ios": (_boolean, True), "android": (_boolean, True)},
    )
    if not document["testLocationsLink"].startswith("https://"):
        raise Refused(f"{where}.testLocationsLink: not a link the app can open")
    return document


def app_alert(document: Mapping[str, Any], risk_score: float) -> dict[str, Any] | None:
    """The alert the app shows for the plugin's risk score: the first bucket holding it."""
    score = min(risk_score, MAX_RISK_SCORE)
    for bucket in document["configurations"]:
        if bucket["minRiskScore"] <= score <= bucket["maxRiskScore"]:
            return dict(bucket)
    return None


def app_reminder_days(document: Mapping[str, Any]) -> list[float]:
    """The reminder timings the app schedules, in days."""
    config = document["reminderNotificationConfig"]
    return [n["timingInMinutes"] / 1440 for n in config["notifications"]]


# ---------------------------------------------------------------------------- feed and push

FEED_ITEM_FIELDS = (
    "eventId",
    "notificationId",
    "glnHash",
    "start",
    "end",
    "systemNotificationBody",
    "appBannerTitle",
    "appBannerBody",
    "appBannerLinkLabel",
    "appBannerLinkUrl",
    "appBannerRequestCallbackEnabled",
)


def _feed_items(items: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(items, list):
        raise Refused(f"{where}: expected an array of items")
    decoded = []
    for index, item in enumerate(items):
        fields = {name: (_string, True) for name in FEED_ITEM_FIELDS}
        # The app discards a value that is not a string: every one must be.
        decoded.append(_decode(f"{where}[{index}]", item, fields))
        if any(not isinstance(v, str) for v in item.values()):
            raise Refused(f"{where}[{index}]: a value that is not a string")
    return decoded


def app_feed(body: bytes, headers: Mapping[str, str]) -> list[dict[str, str]]:
    """``current-exposure-events.json`` as the app reads it through CloudFront (gzip)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    try:
        document = json.loads(body)
    except ValueError as error:
        raise Refused(f"feed: not JSON ({error})") from error
    if not isinstance(document, dict):
        raise Refused("feed: expected an object")
    return _feed_items(document.get("items"), "feed.items")


def push(message: Any) -> list[dict[str, str]]:
    """An FCM HTTP v1 body as a phone receives it: the feed items, woken on both platforms."""
    body = _decode("push", message, {"message": (lambda v: isinstance(v, dict), True)})
    inner = body["message"]
    data = _decode(
        "push.message.data",
        inner.get("data"),
        {"type": (_string, True), "payload": (_string, True)},
    )
    if data["type"] != "exposure-event-notifications":
        raise Refused("push.message.data.type: not the one the app handles")
    apns = inner.get("apns") or {}
    headers = apns.get("headers") or {}
    aps = (apns.get("payload") or {}).get("aps") or {}
    if (
        headers.get("apns-push-type") != "background"
        or headers.get("apns-priority") != "5"
        or aps.get("content-available") != 1
    ):
        raise Refused("push.message.apns: an iOS app is not woken in the background")
    if (inner.get("android") or {}).get("priority") != "high":
        raise Refused("push.message.android.priority: Android defers the message")
    try:
        items = json.loads(data["payload"])
    except ValueError as error:
        raise Refused(f"push payload: not JSON ({error})") from error
    return _feed_items(items, "push.payload")
