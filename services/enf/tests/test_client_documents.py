"""The exposure configuration and notification settings are operator content: a document in
the stage's Parameter Store parameter is served without a deployment, and one a phone would
refuse never is (CLIENTS.md; moto's SSM over HTTP)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import psycopg2
import pytest
from chalice.test import Client
from conftest import Phone, request_code

from covidtracer import settings
from tracerstack.bootstrap import admin_client
from tracerstack.samples import daily_keys


def _packaged(name: str) -> dict[str, Any]:
    raw = resources.files("covidtracer.enfkeys").joinpath(name).read_text()
    return json.loads(raw)  # type: ignore[no-any-return]


@pytest.fixture
def parameters(
    enf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Parameters of this test's own (moto is shared by the session), read on every request:
    under the stage's path, the only one the ENF role may read (docs/operations.md §9)."""
    prefix = f"/covidtracer/{enf_env['STAGE']}/enf/t{uuid.uuid4().hex[:10]}"
    names = {
        "exposure": f"{prefix}/exposure-config",
        "notification": f"{prefix}/notification-config",
    }
    monkeypatch.setenv("ENF_EXPOSURE_CONFIG_PARAMETER", names["exposure"])
    monkeypatch.setenv("ENF_NOTIFICATION_CONFIG_PARAMETER", names["notification"])
    monkeypatch.setenv("ENF_CLIENT_CONFIG_CACHE_SECONDS", "0")
    settings.reset()
    yield names
    ssm = _ssm(enf_env)
    for name in names.values():
        with contextlib.suppress(ssm.exceptions.ParameterNotFound):
            ssm.delete_parameter(Name=name)


def _ssm(env: dict[str, str]) -> Any:
    # The operator's hand, not the service's.
    return admin_client(env["AWS_ENDPOINT_URL"], "ssm", env["AWS_REGION"])


def _put(env: dict[str, str], name: str, document: Any) -> None:
    value = document if isinstance(document, str) else json.dumps(document)
    _ssm(env).put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


@pytest.fixture
def client(parameters: dict[str, str]) -> Iterator[Any]:
    from app import app

    with Client(app) as test_client:
        yield test_client


def _served(phone: Phone) -> dict[str, Any]:
    body = phone.call("GET", "/settings/exposures?os=android&version=8.0.0")
    return json.loads(body["exposureConfig"])  # type: ignore[no-any-return]


def test_without_a_parameter_the_shipped_documents_are_served(client: Any) -> None:
    assert _served(Phone(client)) == _packaged("exposure_config.json")
    notification = json.loads(client.http.get("/settings/notification").body)
    assert notification == _packaged("notification_settings.json")


def test_an_operator_changes_the_exposure_configuration_and_the_upload_rule_follows(
    client: Any, parameters: dict[str, str], enf_env: dict[str, str], outbox: Any
) -> None:
    changed = _packaged("exposure_config.json")
    changed["numFilesAndroid"] = 20
    # Day -6 becomes infectious: a key from 9 days ago with onset 3 days ago is now kept.
    changed["infectiousnessForDaysSinceOnsetOfSymptoms"][14 - 6] = 1
    _put(enf_env, parameters["exposure"], changed)
    phone = Phone(client)
    assert _served(phone) == changed
    onset = (datetime.now(UTC) - timedelta(days=3)).date()
    token = phone.verify(request_code(client, enf_env, outbox, onset=onset.isoformat()))
    keys = daily_keys(1, datetime.now(UTC) - timedelta(days=9))
    assert phone.upload(token.json_body["token"], keys).status_code == 204
    with psycopg2.connect(enf_env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT days_since_onset FROM exposures")
        assert cur.fetchall() == [(-6,)]


@pytest.mark.parametrize(
    "broken",
    [
        # What broke every phone: an object keyed by day where both declare an int array.
        {"infectiousnessForDaysSinceOnsetOfSymptoms": {str(d): 1 for d in range(-14, 15)}},
        {"numFilesAndroid": None},  # Android would list with limit=0
        {"attenuationWeight": 50.5},  # Android declares an Int
        {"v2Mode": "true"},  # iOS decodes a Bool only from true/false
    ],
)
def test_a_document_a_phone_would_refuse_is_never_served(
    client: Any,
    parameters: dict[str, str],
    enf_env: dict[str, str],
    broken: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _put(enf_env, parameters["exposure"], {**_packaged("exposure_config.json"), **broken})
    assert _served(Phone(client)) == _packaged("exposure_config.json")
    assert "client document refused" in capsys.readouterr().out
    _put(enf_env, parameters["exposure"], "not json")
    assert _served(Phone(client)) == _packaged("exposure_config.json")


def test_an_operator_changes_the_notification_settings(
    client: Any, parameters: dict[str, str], enf_env: dict[str, str]
) -> None:
    changed = _packaged("notification_settings.json")
    changed["vaccinePassLinkDisabled"] = {"ios": True, "android": False}
    changed["announcements"] = [
        {
            "title": "Scan in",
            "message": "Keep scanning QR codes",
            "linkText": "More",
            "link": "https://covid19.govt.nz/",
            "date": "2021-10-04",
            "createdAt": "2021-10-04T00:00:00Z",
            "enabled": True,
            "deepLink": "nzcovidtracer://diary",
        }
    ]
    _put(enf_env, parameters["notification"], changed)
    assert json.loads(client.http.get("/settings/notification").body) == changed
    # A gap in the alert buckets (score 100.5 would show no alert) is refused: the last
    # good document stays in service.
    bucket = changed["configurations"][0]
    gap = [{**bucket, "maxRiskScore": 100}, {**bucket, "minRiskScore": 101}]
    _put(enf_env, parameters["notification"], {**changed, "configurations": gap})
    assert json.loads(client.http.get("/settings/notification").body) == changed


def test_a_lambda_keeps_a_document_for_the_cache_time(
    parameters: dict[str, str], enf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENF_CLIENT_CONFIG_CACHE_SECONDS", "60")
    settings.reset()
    from app import app

    with Client(app) as client:
        before = json.loads(client.http.get("/settings/notification").body)
        _put(enf_env, parameters["notification"], {**before, "callbackEnabled": False})
        assert json.loads(client.http.get("/settings/notification").body) == before
