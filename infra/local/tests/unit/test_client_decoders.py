"""The phones' decoders (``tracerstack.clients``) refuse what CLIENTS.md says phones refuse,
and the server's own rules for operator documents (``covidtracer.enfkeys.client_config``) never
let through a document a decoder refuses; the shipped defaults pass both."""

from __future__ import annotations

import copy
import gzip
import json
from importlib import resources
from typing import Any

import pytest

from covidtracer.enfkeys import client_config
from tracerstack import clients

pytestmark = pytest.mark.contract


def _packaged(name: str) -> dict[str, Any]:
    return json.loads(resources.files("covidtracer.enfkeys").joinpath(name).read_text())  # type: ignore[no-any-return]


def _settings(config: Any) -> dict[str, str]:
    return {"exposureConfig": json.dumps(config)}


EXPOSURE = _packaged("exposure_config.json")
NOTIFICATION = _packaged("notification_settings.json")


def test_the_shipped_exposure_configuration_decodes_on_both_platforms() -> None:
    ios = clients.ios_exposure_config(_settings(EXPOSURE))
    android = clients.android_exposure_config(_settings(EXPOSURE))
    assert ios["numFiles"] >= 15 and android["numFilesAndroid"] >= 15  # a new phone's files
    assert ios["v2Mode"] is True and len(ios["infectiousnessForDaysSinceOnsetOfSymptoms"]) == 29
    assert client_config.exposure_config_problems(EXPOSURE) == []


def test_the_shipped_notification_settings_give_an_alert_for_every_score() -> None:
    document = clients.app_notification_settings(NOTIFICATION)
    for score in (0, 1, 15, 15.5, 100.5, 539_999.9, 540_000, 10**9):
        assert clients.app_alert(document, score) is not None, score
    assert clients.app_reminder_days(document) == [7, 14]
    assert document["vaccinePassLinkDisabled"] == {"ios": False, "android": False}
    assert client_config.notification_problems(NOTIFICATION) == []


def _with(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    for name, value in changes.items():
        if value is clients.Refused:
            changed.pop(name, None)
        else:
            changed[name] = value
    return changed


GONE: Any = clients.Refused  # marker: the field is left out

# (change, refused by iOS, refused by Android): the findings and CLIENTS.md's rules.
EXPOSURE_CASES = [
    (
        {"infectiousnessForDaysSinceOnsetOfSymptoms": {str(d): 1 for d in range(-14, 15)}},
        True,
        True,
    ),
    ({"numFilesAndroid": GONE}, False, True),  # Android would ask for limit=0
    ({"numFilesAndroid": 0}, False, True),
    ({"numFilesiOS": GONE}, False, False),  # iOS falls back to 6
    ({"minimumRiskScore": GONE}, True, True),
    ({"minimumRiskScore": "1"}, True, True),
    ({"attenuationWeight": 50.5}, False, True),  # Kotlin Int
    ({"attenuationLevelValues": [1, 2, 3]}, True, True),
    ({"thresholdWeightings": [1, 0.5]}, True, True),
    ({"v2Mode": "true"}, True, True),
    ({"contiguousMode": GONE}, False, True),
    ({"infectiousnessHighWeight": GONE}, True, True),  # v2Mode without the whole ENv2 set
    ({"infectiousnessHighWeight": GONE, "v2Mode": False}, False, True),
    ({"timeThreshold": 15.0}, False, False),  # an integral number is an Int to both
]


@pytest.mark.parametrize(("change", "ios_refuses", "android_refuses"), EXPOSURE_CASES)
def test_the_decoders_refuse_what_phones_refuse_and_so_do_the_server_rules(
    change: dict[str, Any], ios_refuses: bool, android_refuses: bool
) -> None:
    document = _with(EXPOSURE, **change)
    for decode, refuses in (
        (clients.ios_exposure_config, ios_refuses),
        (clients.android_exposure_config, android_refuses),
    ):
        if refuses:
            with pytest.raises(clients.Refused):
                decode(_settings(document))
        else:
            decode(_settings(document))
    if ios_refuses or android_refuses:
        assert client_config.exposure_config_problems(document) != []


def test_the_old_served_shapes_are_refused() -> None:
    """What phones got before issue 10: the settings and notification documents as served."""
    old_exposure = _with(
        EXPOSURE,
        infectiousnessForDaysSinceOnsetOfSymptoms={str(d): 0 for d in range(-14, 15)},
        numFilesAndroid=GONE,
        reportTypeWeights=[100, 100, 0, 0],
    )
    with pytest.raises(clients.Refused):
        clients.ios_exposure_config(_settings(old_exposure))
    with pytest.raises(clients.Refused):
        clients.android_exposure_config(_settings(old_exposure))
    old_notification = {
        "callbackEnabled": True,
        "vaccinePassLinkDisabled": False,
        "alertBuckets": [{"id": "close-contact", "minimumDurationMinutes": 15}],
        "announcements": [],
        "reminders": {"scanReminderEnabled": True},
    }
    with pytest.raises(clients.Refused):
        clients.app_notification_settings(old_notification)
    assert client_config.notification_problems(old_notification) != []


NOTIFICATION_CASES = [
    {"configurations": []},
    {"testLocationsLink": GONE},
    {"vaccinePassLinkDisabled": True},
    {"vaccinePassLinkDisabled": {"ios": True}},
    {"reminderNotificationConfig": {"notifications": []}},  # no version: ignored by the app
    {"announcements": [{"title": "t", "message": "m", "enabled": True}]},
]


@pytest.mark.parametrize("change", NOTIFICATION_CASES)
def test_notification_settings_the_app_would_lose_are_refused_by_both(
    change: dict[str, Any],
) -> None:
    document = _with(NOTIFICATION, **change)
    with pytest.raises(clients.Refused):
        clients.app_notification_settings(document)
    assert client_config.notification_problems(document) != []


def test_a_gap_between_buckets_leaves_a_score_without_an_alert() -> None:
    bucket = NOTIFICATION["configurations"][0]
    gap = [{**bucket, "maxRiskScore": 100}, {**bucket, "minRiskScore": 101}]
    document = clients.app_notification_settings(_with(NOTIFICATION, configurations=gap))
    assert clients.app_alert(document, 100.5) is None
    assert client_config.notification_problems(_with(NOTIFICATION, configurations=gap)) != []
    meeting = [{**bucket, "maxRiskScore": 100}, {**bucket, "minRiskScore": 100}]
    assert client_config.notification_problems(_with(NOTIFICATION, configurations=meeting)) == []


def _push(**message: Any) -> dict[str, Any]:
    item = dict.fromkeys(clients.FEED_ITEM_FIELDS, "x")
    base = {
        "topic": "all",
        "data": {"type": "exposure-event-notifications", "payload": json.dumps([item])},
        "apns": {
            "headers": {"apns-push-type": "background", "apns-priority": "5"},
            "payload": {"aps": {"content-available": 1}},
        },
        "android": {"priority": "high"},
    }
    base.update(message)
    return {"message": {k: v for k, v in base.items() if v is not GONE}}


def test_a_push_must_wake_both_platforms() -> None:
    assert len(clients.push(_push())) == 1
    for change in ({"apns": GONE}, {"android": GONE}, {"android": {"priority": "normal"}}):
        with pytest.raises(clients.Refused):
            clients.push(_push(**change))


def test_the_feed_must_be_all_strings() -> None:
    item = dict.fromkeys(clients.FEED_ITEM_FIELDS, "x")
    body = gzip.compress(json.dumps({"items": [item]}).encode())
    assert clients.app_feed(body, {"Content-Encoding": "gzip"}) == [item]
    bad = gzip.compress(
        json.dumps({"items": [{**item, "appBannerRequestCallbackEnabled": False}]}).encode()
    )
    with pytest.raises(clients.Refused):
        clients.app_feed(bad, {"Content-Encoding": "gzip"})


def test_the_operators_check_applies_the_rules_and_the_decoders() -> None:
    from tracerstack.client_documents import problems

    assert problems("exposure", json.dumps(EXPOSURE)) == []
    assert problems("notification", json.dumps(NOTIFICATION)) == []
    found = problems("exposure", json.dumps(_with(EXPOSURE, numFilesAndroid=GONE)))
    assert any("numFilesAndroid is missing" in p for p in found)
    assert any("a phone refuses it" in p for p in found)
    assert problems("notification", "{")[0].startswith("not JSON")
