"""The rules of the documents phones read, and how a Lambda keeps the operator's version."""

from __future__ import annotations

import json
from typing import Any

import pytest

from covidtracer.enfkeys import client_config, client_config_store
from covidtracer.enfkeys.client_config_store import EXPOSURE, NOTIFICATION, ClientDocuments

EXPOSURE_DEFAULT = json.loads(client_config_store.packaged(EXPOSURE))
NOTIFICATION_DEFAULT = json.loads(client_config_store.packaged(NOTIFICATION))


def test_the_shipped_documents_pass_the_rules() -> None:
    assert client_config.exposure_config_problems(EXPOSURE_DEFAULT) == []
    assert client_config.notification_problems(NOTIFICATION_DEFAULT) == []
    assert client_config.infectious_days(EXPOSURE_DEFAULT) == frozenset(range(-5, 11))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"numFilesAndroid": None}, "numFilesAndroid is missing"),
        ({"numFilesAndroid": 0}, "numFilesAndroid must be between 1"),
        ({"attenuationWeight": 50.5}, "Android declares an Int"),
        ({"attenuationLevelValues": [1] * 7}, "exactly 8 items"),
        ({"attenuationLevelValues": [9] * 8}, "between 0 and 8"),
        ({"infectiousnessForDaysSinceOnsetOfSymptoms": {"0": 1}}, "must be a JSON array"),
        ({"infectiousnessForDaysSinceOnsetOfSymptoms": [1] * 28}, "exactly 29 items"),
        ({"infectiousnessForDaysSinceOnsetOfSymptoms": [3] * 29}, "between 0 and 2"),
        ({"v2Mode": 1}, "v2Mode must be a boolean"),
        ({"minimumRiskScore": True}, "minimumRiskScore must be a JSON integer"),
        ({"reportTypeWeights": [100, 100, 0, 0]}, "does not read: reportTypeWeights"),
    ],
)
def test_an_exposure_configuration_a_phone_would_misread_is_named(
    change: dict[str, Any], problem: str
) -> None:
    document = {**EXPOSURE_DEFAULT, **change}
    problems = client_config.exposure_config_problems(document)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("ranges", "gap"),
    [
        ([(0, 540_000)], None),
        ([(0, 100), (100, 540_000)], None),
        ([(50, 540_000), (0, 60)], None),
        ([(0, 100), (101, 540_000)], 100),
        ([(1, 540_000)], 0),
        ([(0, 1000)], 1000),
    ],
)
def test_alert_buckets_must_cover_every_score_the_app_looks_up(
    ranges: list[tuple[int, int]], gap: int | None
) -> None:
    assert client_config.uncovered_score(ranges) == gap


class _Parameters:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.reads = 0
        self.down = False

    def read(self, name: str) -> str | None:
        self.reads += 1
        if self.down:
            raise ConnectionError("parameter store unreachable")
        return self.values.get(name)


def _documents(parameters: _Parameters, clock: list[float], ttl: float = 60) -> ClientDocuments:
    defaults = {
        kind: client_config_store.checked(kind, client_config_store.packaged(kind), "packaged")
        for kind in (EXPOSURE, NOTIFICATION)
    }
    return ClientDocuments(
        {EXPOSURE: "/p/exposure", NOTIFICATION: "/p/notification"},
        defaults,
        ttl,
        read=parameters.read,
        clock=lambda: clock[0],
    )


def test_a_document_is_read_once_per_cache_time_and_changes_take_effect_after_it() -> None:
    parameters, clock = _Parameters(), [0.0]
    documents = _documents(parameters, clock)
    assert documents.exposure().value() == EXPOSURE_DEFAULT  # no parameter yet
    parameters.values["/p/exposure"] = json.dumps({**EXPOSURE_DEFAULT, "numFilesAndroid": 20})
    clock[0] = 59
    assert documents.exposure().value()["numFilesAndroid"] == 15
    assert parameters.reads == 1
    clock[0] = 60
    assert documents.exposure().value()["numFilesAndroid"] == 20
    assert parameters.reads == 2


def test_an_outage_or_a_bad_document_keeps_the_last_good_one() -> None:
    parameters, clock = _Parameters(), [0.0]
    documents = _documents(parameters, clock, ttl=0)
    good = {**EXPOSURE_DEFAULT, "timeThreshold": 10}
    parameters.values["/p/exposure"] = json.dumps(good)
    assert documents.exposure().value() == good
    parameters.down = True
    assert documents.exposure().value() == good
    parameters.down = False
    parameters.values["/p/exposure"] = json.dumps({**good, "v2Mode": "yes"})
    assert documents.exposure().value() == good
    del parameters.values["/p/exposure"]  # the operator deletes it: back to the default
    assert documents.exposure().value() == EXPOSURE_DEFAULT


def test_the_upload_rule_follows_the_served_document() -> None:
    parameters, clock = _Parameters(), [0.0]
    documents = _documents(parameters, clock, ttl=0)
    changed = {
        **EXPOSURE_DEFAULT,
        "infectiousnessForDaysSinceOnsetOfSymptoms": [0] * 14 + [2] + [0] * 14,
    }
    parameters.values["/p/exposure"] = json.dumps(changed)
    assert documents.exposure().infectious_days == frozenset({0})


def test_a_value_handed_out_is_a_copy() -> None:
    documents = _documents(_Parameters(), [0.0])
    first = documents.notification().value()
    first["configurations"].clear()
    assert documents.notification().value() == NOTIFICATION_DEFAULT
