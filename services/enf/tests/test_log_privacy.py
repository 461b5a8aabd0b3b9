"""After a full journey through both APIs (threaded local servers, as ``make local`` runs
them) and the export job, no personal data is in any log line (DESIGN §8): names, phones,
emails, dates of birth, GLNs, place names, notes, consent and upload codes, keys, tokens."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import app_hash, secret

from covidtracer.enfkeys.settings import enf_settings
from tracerstack.bootstrap import Bootstrap
from tracerstack.environment import role_credentials
from tracerstack.pytest_plugin import serve_api
from tracerstack.samples import daily_keys

EMAIL = "aroha.log-scan@example.nz"
FIRST, LAST, MIDDLE = "Arohanui", "Tekaumārua", "Mereana"
PHONE, PHONE_SPACED = "+64215550123", "+64 21 555 0123"
BORN = "1987-06-05"
GLN = "9429312345678"
PLACE, NOTE, CONTACT_NOTES = "Kōwhai Café Ponsonby", "with Wiremu", "Call after 5pm please"


def _post(url: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(url, json=body, headers=headers or {}, timeout=20)


def test_no_personal_data_in_any_log_after_a_full_journey(
    enf_env: dict[str, str],
    aws_stack: Bootstrap,
    outbox: Any,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    logs = tmp_path / "services.log"
    ncts = {"x-api-key": secret(enf_env, "NCTS_API_KEY_SECRET_ID")}
    seen: list[str] = [EMAIL, FIRST, LAST, MIDDLE, PHONE, PHONE_SPACED, BORN, GLN, PLACE, NOTE,
                       CONTACT_NOTES, "21 555 0123"]  # fmt: skip
    # The wrong code and the right one follow each other at once: what they log is the point,
    # not the one-attempt-a-second limit (tested on its own).
    enf_env = {**enf_env, "ENF_VERIFY_MIN_INTERVAL_SECONDS": "0"}
    # Each API signs as its own role, as in the local stack.
    details_env = {**enf_env, **role_credentials(aws_stack, "details", enf_env["STAGE"])}
    with serve_api("details", details_env, logs) as details, serve_api("enf", enf_env, logs) as enf:
        # --- app API: sign in, contact details, diary, exposure event, callback
        client_id = json.loads(enf_env["APP_CLIENT_IDS"])["ios"]
        started = _post(f"{details}/user/auth/initiate", {"clientId": client_id, "email": EMAIL})
        assert started.status_code == 200, started.text
        mail = [m for m in outbox.outbox() if m["channel"] == "email" and m["to"] == EMAIL][-1]
        code = re.findall(r"\b\d{6}\b", mail["body"])[0]
        wrong = _post(f"{details}/user/auth/confirm", {"clientId": client_id, "email": EMAIL,
                      "code": "000000" if code != "000000" else "111111",
                      "verificationId": started.json()["verificationId"]})  # fmt: skip
        assert wrong.status_code == 400
        answer = {"clientId": client_id, "email": EMAIL, "code": code,
                  "verificationId": started.json()["verificationId"]}  # fmt: skip
        confirmed = _post(f"{details}/user/auth/confirm", answer)
        assert confirmed.status_code == 200, confirmed.text
        access = confirmed.json()["accessToken"]
        me = {"Authorization": f"Bearer {access}"}
        record = {"firstName": FIRST, "middleName": MIDDLE, "lastName": LAST,
                  "phone": PHONE_SPACED, "dateOfBirth": BORN, "gender": "Wahine",
                  "ethnicity": {"selected": ["Māori"], "other": "Ngāti Porou"}}  # fmt: skip
        assert requests.put(f"{details}/user/details", json=record, headers=me, timeout=20).ok
        assert requests.get(f"{details}/user/details", headers=me, timeout=20).ok
        request = urllib.request.Request(f"{outbox.url}/consent-codes", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            consent = json.load(response)["consentCode"]
        visit = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="milliseconds")
        diary = {"consentCode": consent, "locations": [{"gln": GLN, "locationName": PLACE,
                 "note": NOTE, "entryType": 0, "time": visit.replace("+00:00", "Z")}]}  # fmt: skip
        assert _post(f"{details}/v2/user/location-history", diary).status_code == 204
        assert _post(f"{details}/v2/user/location-history", {**diary, "consentCode": "ZZZZZZ"}
                     ).status_code == 400  # fmt: skip
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        event = {"eventId": "a0l4a0000004xhcAAA", "notificationId": "logscan1", "gln": GLN,
                 "start": start.isoformat().replace("+00:00", "Z"),
                 "end": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                 "systemNotificationBody": "b", "appBannerTitle": "t", "appBannerBody": "b",
                 "appBannerRequestCallbackEnabled": True}  # fmt: skip
        assert _post(f"{details}/ncts/exposure-events", event, ncts).status_code == 201
        callback = {"eventId": event["eventId"], "notificationId": "logscan1", "gln": GLN,
                    "firstName": FIRST, "lastName": LAST, "phone": PHONE_SPACED,
                    "contactNotes": CONTACT_NOTES}  # fmt: skip
        assert _post(f"{details}/v2/exposure-event-matches", callback).status_code == 204
        assert _post(f"{details}/v2/exposure-event-matches", {**callback, "gln": "9429300000001"}
                     ).status_code == 400  # fmt: skip
        assert requests.delete(f"{details}/user/details", headers=me, timeout=20).status_code == 204

        # --- ENF API: register, code by SMS, wrong and right verify, upload, callback, files
        nonce = _post(f"{enf}/register", {}).json()["nonce"]
        tokens = requests.put(f"{enf}/register", json={"nonce": nonce, "platform": "test",
                              "deviceVerificationPayload": "ok"}, timeout=20).json()  # fmt: skip
        bearer = {"Authorization": f"Bearer {tokens['token']}"}
        onset = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
        sent = _post(f"{enf}/ncts/verification-codes", {"phone": PHONE_SPACED,
                     "symptomOnset": onset}, ncts)  # fmt: skip
        assert sent.status_code == 201, sent.text
        sms = [m for m in outbox.outbox() if m["channel"] == "sms"][-1]
        upload_code = re.findall(r"\b\d{6}\b", sms["body"])[0]
        guess = "123456" if upload_code != "123456" else "654321"
        refused = _post(f"{enf}/exposures/verify", {"hash": app_hash(guess)}, bearer)
        assert refused.status_code == 403
        verified = _post(f"{enf}/exposures/verify", {"hash": app_hash(upload_code)}, bearer)
        assert verified.status_code == 200, verified.text
        keys = daily_keys(5)
        body = {"token": verified.json()["token"], "exposures": keys, "platform": "test",
                "deviceVerificationPayload": "ok"}  # fmt: skip
        assert _post(f"{enf}/exposures", body, bearer).status_code == 204
        call_me = {"phone": PHONE_SPACED, "firstName": FIRST, "lastName": LAST,
                   "contactNotes": CONTACT_NOTES}  # fmt: skip
        assert _post(f"{enf}/callback", call_me, bearer).status_code == 204
        assert requests.get(f"{enf}/exposures?since=0", headers=bearer, timeout=20).ok
        assert requests.delete(f"{enf}/register", headers=bearer, timeout=20).status_code == 204

    # --- the export job, in this process
    from covidtracer.enffiles import service as files
    from covidtracer.enffiles import wiring as files_wiring

    deps = files_wiring.deps_for(enf_settings())
    files.export_keys(deps, files.ExportRun(), datetime.now(UTC) + timedelta(days=2))
    captured = capfd.readouterr()
    logged = logs.read_text() + captured.out + captured.err
    lines = [line for line in logged.splitlines() if line.startswith("{")]
    assert len(lines) > 25 and '"status": 204' in logged  # the access logs did run
    seen += [code, upload_code, app_hash(upload_code), app_hash(guess), consent, access,
             tokens["token"], tokens["refreshToken"], verified.json()["token"],
             started.json()["verificationId"]]  # fmt: skip
    for key in keys:
        raw = base64.b64decode(key["keyData"])
        seen += [key["keyData"], raw.hex(), base64.urlsafe_b64encode(raw).decode()]
    leaked = sorted({value for value in seen if value in logged})
    assert leaked == [], f"personal data in the logs: {len(leaked)} values"
