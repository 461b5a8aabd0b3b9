"""Every route's refusals through the handler: 401/403/404/410/429/503 and the error shape."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client
from conftest import Phone, app_hash, request_code, secret, sql

from covidtracer import settings
from tracerstack.samples import daily_keys

# ---------------------------------------------------------------------------- registration


def test_a_nonce_is_64_hex_and_a_phone_gets_both_tokens(client: Any) -> None:
    nonce = json.loads(client.http.post("/register", body=b"").body)["nonce"]
    assert len(nonce) == 64 and int(nonce, 16) >= 0
    phone = Phone(client)
    assert phone.token and phone.refresh_token


def test_an_unknown_or_expired_nonce_is_404(client: Any, enf_env: dict[str, str]) -> None:
    body = {"nonce": "0" * 64, "platform": "test", "deviceVerificationPayload": "x"}
    assert _anon(client).request("PUT", "/register", body).status_code == 404
    nonce = json.loads(client.http.post("/register", body=b"").body)["nonce"]
    sql(enf_env, "UPDATE registrations SET created_at = now() - interval '61 minutes'")
    response = _anon(client).request("PUT", "/register", {**body, "nonce": nonce})
    assert response.status_code == 404
    assert json.loads(response.body)["type"] == "urn:errors:not-found"


def test_a_nonce_is_used_once(client: Any) -> None:
    nonce = json.loads(client.http.post("/register", body=b"").body)["nonce"]
    body = {"nonce": nonce, "platform": "test", "deviceVerificationPayload": "x"}
    assert _anon(client).request("PUT", "/register", body).status_code == 200
    assert _anon(client).request("PUT", "/register", body).status_code == 404


def test_a_failed_attestation_is_403(client: Any) -> None:
    # Locally android is listed but has no root certificate: its verifier refuses everyone.
    nonce = json.loads(client.http.post("/register", body=b"").body)["nonce"]
    body = {"nonce": nonce, "platform": "android", "deviceVerificationPayload": "a.b.c"}
    response = _anon(client).request("PUT", "/register", body)
    assert response.status_code == 403
    assert json.loads(response.body)["type"] == "urn:errors:forbidden"


def test_ios_devicecheck_goes_to_apple_over_http(
    enf_env: dict[str, str], partners: Any, apple_devicecheck_key: str
) -> None:
    settings.reset()
    from app import app

    with Client(app) as client:

        def register(payload: str) -> Any:
            nonce = json.loads(client.http.post("/register", body=b"").body)["nonce"]
            body = {"nonce": nonce, "platform": "ios", "deviceVerificationPayload": payload}
            return _anon(client).request("PUT", "/register", body)

        assert register("device-token").status_code == 200
        partners.outage("devicecheck", 503)
        try:
            outage = register("device-token")
        finally:
            partners.clear()
        assert outage.status_code == 503
        assert json.loads(outage.body)["type"] == "urn:errors:unavailable"


def test_refresh_deletion_and_stale_tokens(client: Any) -> None:
    phone = Phone(client)
    refreshed = phone.request("POST", "/refresh", token=phone.refresh_token)
    assert refreshed.status_code == 200
    assert phone.request("POST", "/refresh", token=phone.token).status_code == 401
    assert phone.request("DELETE", "/register").status_code == 204
    assert phone.request("POST", "/refresh", token=phone.refresh_token).status_code == 401
    assert phone.request("GET", "/settings/exposures?os=ios").status_code == 401
    assert phone.request("DELETE", "/register").status_code == 401


BEARER_ROUTES = [
    ("POST", "/exposures/verify"),
    ("POST", "/exposures"),
    ("GET", "/settings/exposures"),
    ("POST", "/metrics"),
    ("POST", "/callback"),
    ("DELETE", "/register"),
    ("POST", "/refresh"),
]


def test_routes_that_need_a_bearer_refuse_a_missing_or_forged_one(client: Any) -> None:
    # Each use case's own refusal is a unit rule (test_hostile_requests); here every route
    # answers it in the error shape.
    for method, path in BEARER_ROUTES:
        for token in ("", "forged.token.here"):
            body = {"hash": app_hash("123456")} if path == "/exposures/verify" else {}
            response = _anon(client).request(method, path, body, token=token)
            assert response.status_code in (400, 401), (path, response.body)
            if response.status_code == 400:  # the body is checked first on some routes
                assert json.loads(response.body)["type"] == "urn:errors:validation"
            else:
                assert json.loads(response.body)["type"] == "urn:errors:unauthorized"


# ---------------------------------------------------------------------------- codes


def _ncts(client: Any, env: dict[str, str], body: Any, key: str | None = "") -> Any:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key or secret(env, "NCTS_API_KEY_SECRET_ID")
    return client.http.post("/ncts/verification-codes", headers=headers, body=json.dumps(body))


def test_only_ncts_may_request_codes(client: Any, enf_env: dict[str, str], outbox: Any) -> None:
    body = {"phone": "+64210123456", "symptomOnset": datetime.now(UTC).date().isoformat()}
    assert _ncts(client, enf_env, body, key=None).status_code == 401
    assert _ncts(client, enf_env, body, key="wrong").status_code == 401
    assert outbox.outbox() == []
    created = _ncts(client, enf_env, body)
    assert created.status_code == 201
    expires = datetime.fromisoformat(json.loads(created.body)["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=24)


def test_a_bad_code_request_names_the_fields(client: Any, enf_env: dict[str, str]) -> None:
    response = _ncts(client, enf_env, {"phone": "12", "symptomOnset": "tomorrow"})
    assert response.status_code == 400
    assert set(json.loads(response.body)["errors"]) == {"Phone", "SymptomOnset"}


def test_an_sms_outage_is_503_and_leaves_no_code(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    outbox.outage("sms", 500)
    body = {"phone": "+64210123456", "symptomOnset": datetime.now(UTC).date().isoformat()}
    assert _ncts(client, enf_env, body).status_code == 503
    assert sql(enf_env, "SELECT count(*) FROM verification_codes") == [(0,)]


def test_codes_are_stored_only_as_keyed_hashes(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    code = request_code(client, enf_env, outbox)
    rows = sql(enf_env, "SELECT code_hmac FROM verification_codes")
    stored = bytes(rows[0][0])
    assert code.encode() not in stored and bytes.fromhex(app_hash(code)) not in stored
    import hashlib
    import hmac

    key = secret(enf_env, "ENF_CODE_HASH_SECRET_ID").encode()
    assert stored == hmac.new(key, app_hash(code).encode(), hashlib.sha256).digest()


def test_verify_refuses_unknown_used_and_expired_codes(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = Phone(client)
    unknown = phone.verify("000000")
    code = request_code(client, enf_env, outbox)
    assert unknown.status_code in (403, 429)
    sql(enf_env, "UPDATE registrations SET last_verify_at = now() - interval '1 hour'")
    assert phone.verify(code).status_code == 200
    # Used: by another registration (issue 19: the one that claimed it gets its token again).
    used = Phone(client).verify(code)
    assert used.status_code == 403
    assert json.loads(used.body)["type"] == "urn:errors:forbidden"

    expired_code = request_code(client, enf_env, outbox)
    sql(enf_env, "UPDATE verification_codes SET expires_at = now() - interval '1 second'")
    sql(enf_env, "UPDATE registrations SET last_verify_at = now() - interval '1 hour'")
    gone = phone.verify(expired_code)
    assert gone.status_code == 410
    assert json.loads(gone.body)["type"] == "urn:errors:gone"


def test_guessing_is_limited_per_second_and_per_day(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = Phone(client)
    assert phone.verify("111111").status_code == 403
    too_soon = phone.verify("111112")
    assert too_soon.status_code == 429
    assert too_soon.headers["Retry-After"] == "1"
    sql(
        enf_env,
        "UPDATE registrations SET last_verify_at = now() - interval '1 hour',"
        " verify_failures = 10, verify_failure_day = (now() AT TIME ZONE 'UTC')::date",
    )
    code = request_code(client, enf_env, outbox)
    capped = phone.verify(code)  # even the right code waits until tomorrow
    assert capped.status_code == 429
    assert int(capped.headers["Retry-After"]) > 1


# ---------------------------------------------------------------------------- upload


def _upload_token(client: Any, env: dict[str, str], outbox: Any, phone: Phone) -> str:
    code = request_code(client, env, outbox)
    sql(env, "UPDATE registrations SET last_verify_at = NULL")
    response = phone.verify(code)
    assert response.status_code == 200, response.body
    return str(json.loads(response.body)["token"])


def test_upload_refuses_unknown_used_and_expired_tokens(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = Phone(client)
    unknown = phone.upload("6b1bc7a4-7cfd-4f3b-8f0b-7c1a3d9c2e11", daily_keys(2))
    assert unknown.status_code == 403
    token = _upload_token(client, enf_env, outbox, phone)
    assert phone.upload(token, daily_keys(2)).status_code == 204
    assert phone.upload(token, daily_keys(2)).status_code == 403
    other = Phone(client)
    token = _upload_token(client, enf_env, outbox, phone)
    assert other.upload(token, daily_keys(2)).status_code == 403  # another phone's token
    sql(enf_env, "UPDATE upload_tokens SET expires_at = now() - interval '1 second'")
    assert phone.upload(token, daily_keys(2)).status_code == 410
    assert phone.request("DELETE", "/register").status_code == 204
    assert phone.upload(token, daily_keys(2)).status_code == 401  # a forgotten registration


def test_a_rejected_or_failed_upload_does_not_burn_the_token(
    client: Any, enf_env: dict[str, str], outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = Phone(client)
    token = _upload_token(client, enf_env, outbox, phone)
    bad = daily_keys(2)
    bad[1]["rollingPeriod"] = 145
    rejected = phone.upload(token, bad)
    assert rejected.status_code == 400
    assert "Exposures[1].RollingPeriod" in json.loads(rejected.body)["errors"]

    from covidtracer.enfkeys import db as keys_db

    real = keys_db.claim_and_insert_keys

    def broken_insert(cur: Any, token: Any, registration: Any, keys: Any, *a: Any, **k: Any) -> Any:
        # The database fails after the claim: a key the table's CHECK refuses.
        return real(cur, token, registration, [replace(keys[0], key_data=b"short")], *a, **k)

    monkeypatch.setattr(keys_db, "claim_and_insert_keys", broken_insert)
    assert phone.upload(token, daily_keys(2)).status_code == 500
    monkeypatch.undo()
    assert sql(enf_env, "SELECT claimed_at FROM upload_tokens") == [(None,)]
    assert phone.upload(token, daily_keys(3)).status_code == 204
    assert sql(enf_env, "SELECT count(*) FROM exposures") == [(3,)]


def test_a_duplicate_key_is_ignored(client: Any, enf_env: dict[str, str], outbox: Any) -> None:
    phone = Phone(client)
    keys = daily_keys(2)
    assert phone.upload(_upload_token(client, enf_env, outbox, phone), keys).status_code == 204
    again = [*keys, *daily_keys(1, datetime.now(UTC) - timedelta(days=2))]
    assert phone.upload(_upload_token(client, enf_env, outbox, phone), again).status_code == 204
    assert sql(enf_env, "SELECT count(*) FROM exposures") == [(3,)]


def test_a_likely_case_stores_clinical_diagnosis_keys(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = Phone(client)
    code = request_code(client, enf_env, outbox, test_type="likely")
    token = json.loads(phone.verify(code).body)["token"]
    assert phone.upload(token, daily_keys(1)).status_code == 204
    assert sql(enf_env, "SELECT report_type FROM exposures") == [(2,)]


# -------------------------------------------------------------- settings, metrics, callback


def test_exposure_settings_are_a_json_string_for_registered_phones(client: Any) -> None:
    phone = Phone(client)
    body = phone.call("GET", "/settings/exposures?os=android&version=6.1.0")
    assert isinstance(body["exposureConfig"], str)
    assert "minimumRiskScore" in json.loads(body["exposureConfig"])
    assert phone.request("GET", "/settings/exposures?os=web").status_code == 400


def _notification_default() -> dict[str, Any]:
    from importlib import resources

    raw = resources.files("covidtracer.enfkeys").joinpath("notification_settings.json").read_text()
    return json.loads(raw)  # type: ignore[no-any-return]


def test_notification_settings_need_no_token_and_come_from_configuration(
    enf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import app

    with Client(app) as client:
        default = json.loads(client.http.get("/settings/notification").body)
    assert default == _notification_default()
    stage_default = {**default, "callbackEnabled": False}
    monkeypatch.setenv("ENF_NOTIFICATION_CONFIG", json.dumps(stage_default))
    settings.reset()
    with Client(app) as client:
        assert json.loads(client.http.get("/settings/notification").body) == stage_default


def test_a_stage_default_a_phone_would_misread_stops_the_service(
    enf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENF_NOTIFICATION_CONFIG", '{"callbackEnabled": false}')
    settings.reset()
    from app import app

    with Client(app) as client:
        response = client.http.get("/settings/notification")
    # A misconfigured stage answers "not available now" (covidtracer.http maps SettingsError).
    assert response.status_code == 503
    assert json.loads(response.body)["type"] == "urn:errors:unavailable"


def test_metrics_are_counted_once_per_interval(client: Any, enf_env: dict[str, str]) -> None:
    phone = Phone(client)
    event = {"os": "ios", "event": "CONTACT_UPLOAD", "version": "6.1.0"}
    assert phone.request("POST", "/metrics", event).status_code == 204
    again = phone.request("POST", "/metrics", event)
    assert again.status_code == 429
    assert again.headers["Retry-After"] == "86400"
    assert phone.request("POST", "/metrics", {**event, "event": "NOPE"}).status_code == 400
    assert sql(enf_env, "SELECT event, os, version, value FROM metrics") == [
        ("CONTACT_UPLOAD", "ios", "6.1.0", 1)
    ]


def test_a_plugin_metric_with_its_payload_is_counted(client: Any, enf_env: dict[str, str]) -> None:
    # CLIENTS.md: what the plugin sends, as it sends it; all four of its events are a unit
    # table (test_hostile_requests).
    phone = Phone(client)
    payload = {"description": "Failed to retrieve settings", "error": "decoding"}
    body = {"os": "android", "event": "LOG_ERROR", "version": "8.0.0", "payload": payload}
    assert phone.request("POST", "/metrics", body).status_code == 204
    assert sql(enf_env, "SELECT event, os, value FROM metrics") == [("LOG_ERROR", "android", 1)]


def test_a_callback_reaches_ncts(client: Any, outbox: Any) -> None:
    phone = Phone(client)
    body = {"phone": "+64 21 012 3456", "firstName": "Aroha", "contactNotes": "after 5pm"}
    assert phone.request("POST", "/callback", body).status_code == 204
    [sent] = [m for m in outbox.outbox() if m["channel"] == "ncts"]
    assert sent["to"] == "callback-requests"
    assert json.loads(sent["body"])["phone"] == "+64210123456"
    assert phone.request("POST", "/callback", body).status_code == 429


# NCTS down for a callback (503, then 204 once it is back, the 503s refunded): test_faults.py.


def test_a_disabled_callback_is_400_disabled(
    enf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "ENF_NOTIFICATION_CONFIG", json.dumps({**_notification_default(), "callbackEnabled": False})
    )
    settings.reset()
    from app import app

    with Client(app) as client:
        phone = Phone(client)
        response = phone.request("POST", "/callback", {"phone": "+64210123456"})
    assert response.status_code == 400
    assert json.loads(response.body)["type"] == "urn:errors:disabled"


def _anon(client: Any) -> Phone:
    """A Phone that has not registered (for requests without a token)."""
    phone = Phone.__new__(Phone)
    phone.client = client
    return phone
