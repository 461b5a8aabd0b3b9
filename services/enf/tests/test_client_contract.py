"""The contract tier: the ENF API's real answers, decoded as the plugin and the app decode
them (``tracerstack.clients``, written from CLIENTS.md). A change that would break a phone
fails here."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Phone, request_code

from covidtracer.enffiles import service as files
from covidtracer.enffiles import wiring as files_wiring
from covidtracer.enfkeys.settings import enf_settings
from tracerstack import clients
from tracerstack.exportreader import read_export_zip
from tracerstack.samples import daily_keys

pytestmark = pytest.mark.contract


def _json(response: Any) -> Any:
    assert response.status_code == 200, (response.status_code, response.body)
    return json.loads(response.body)


def _export(now: datetime) -> None:
    config = enf_settings()
    files.export_keys(files_wiring.deps_for(config), files.ExportRun(), now)


def test_both_platforms_decode_the_settings_and_list_files_with_their_own_limit(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = Phone(client)
    ios = clients.ios_exposure_config(
        _json(phone.request("GET", "/settings/exposures?os=ios&version=8.0.0"))
    )
    android = clients.android_exposure_config(
        _json(phone.request("GET", "/settings/exposures?os=android&version=8.0.0"))
    )
    # A case's keys, exported, so the listing has something to hand out.
    onset = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    token = phone.verify(request_code(client, enf_env, outbox, onset=onset)).json_body["token"]
    assert phone.upload(token, daily_keys(15)).status_code == 204
    _export(datetime.now(UTC) + timedelta(days=1, hours=3))

    # Each plugin's own request (CLIENTS.md): iOS without, Android with the slash.
    ios_path = f"/exposures?since=0&limit={ios['numFiles']}&version=8.0.0&os=ios"
    android_path = (
        f"/exposures/?since=0&limit={android['numFilesAndroid']}&os=android&version=8.0.0"
    )
    for path in (ios_path, android_path):
        files = clients.exposure_files(_json(phone.request("GET", path)))
        assert 1 <= len(files) <= 15
        since = clients.next_since(files, 0)
        assert clients.exposure_files(_json(phone.request("GET", f"{path}&since={since}"))) == []
        for accept in ("*/*", "application/zip"):
            data = client.http.get(
                f"/data/{files[0]['path']}",
                headers={"Authorization": f"Bearer {phone.token}", "Accept": accept},
            )
            assert data.status_code == 200 and read_export_zip(data.body)[0].keys


def test_the_notification_settings_give_an_alert_a_link_reminders_and_the_switch(
    client: Any,
) -> None:
    document = clients.app_notification_settings(_json(client.http.get("/settings/notification")))
    for score in (0, 1, 15.5, 100.5, 300, 540_000, 2_000_000):  # the plugin's whole range
        alert = clients.app_alert(document, score)
        assert alert is not None and alert["alertTitle"], score
    assert document["testLocationsLink"].startswith("https://")
    assert clients.app_reminder_days(document) == [7, 14]
    assert set(document["vaccinePassLinkDisabled"]) == {"ios", "android"}


def test_the_registration_and_upload_answers_are_what_the_plugin_reads(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    anonymous = Phone.__new__(Phone)
    anonymous.client = client
    assert len(clients.registration(_json(anonymous.request("POST", "/register", {})))) == 64
    phone = Phone(client)
    assert clients.token(_json(phone.request("POST", "/refresh", token=phone.refresh_token)))
    code = request_code(client, enf_env, outbox)
    upload_token = clients.token(_json(phone.verify(code)))
    assert phone.upload(upload_token, daily_keys(15)).status_code == 204
