"""Google's contract through the handler (issue 21): an ENX phone's journey from an NCTS code
to its keys in the export files, revision, the retry of a lost answer, a code single-use
across both contracts, chaff, and the error shapes — against moto (KMS, Secrets Manager,
S3), the stand-ins and PostgreSQL."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest
from chalice.test import Client
from conftest import Phone, app_hash, request_code, secret

from tracerstack.enx import EnxPhone, enx_keys, jwt_claims, tekmac
from tracerstack.exportreader import read_export_zip
from tracerstack.pytest_plugin import from_address

CONFIRMED_TEST, CONFIRMED_CLINICAL_DIAGNOSIS = 1, 2


def _post(client: Client) -> Any:
    def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        response = client.http.post(
            path,
            headers={"Content-Type": "application/json", **headers},
            body=json.dumps(body).encode(),
        )
        return response.status_code, json.loads(response.body) if response.body else None

    return post


def _phone(client: Client, env: dict[str, str]) -> EnxPhone:
    apps = json.loads(secret(env, "ENF_APPS_SECRET_ID"))
    return EnxPhone(_post(client), apps["apiKey"], "nz.govt.health.covidtracer")


def _stored(env: dict[str, str]) -> list[tuple[Any, ...]]:
    with psycopg2.connect(env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT encode(key_data, 'base64'), report_type, days_since_onset,"
            " transmission_risk_level, revised_report_type FROM exposures ORDER BY 1"
        )
        return cur.fetchall()


def _export(now: datetime) -> tuple[list[str], list[Any]]:
    """Run the export at ``now``; (index.txt's lines, the batches of the files it lists)."""
    from covidtracer.enffiles import service as files
    from covidtracer.enffiles import wiring as files_wiring
    from covidtracer.enffiles.model import INDEX_PATH

    deps = files_wiring.deps()
    files.export_keys(deps, files.ExportRun(), now)
    index = deps.store.get(INDEX_PATH).decode().split()
    return index, [read_export_zip(deps.store.get(path))[0] for path in index]


def test_an_enx_phone_publishes_with_a_certificate_and_its_keys_reach_index_txt(
    client: Client, enf_env: dict[str, str], outbox: Any
) -> None:
    onset = (datetime.now(UTC) - timedelta(days=3)).date()
    code = request_code(client, enf_env, outbox, onset=onset.isoformat())
    phone = _phone(client, enf_env)
    status, verified = phone.verify(code)
    assert status == 200, verified
    assert verified["testtype"] == "confirmed"
    assert verified["symptomDate"] == onset.isoformat()
    assert "testDate" not in verified  # NCTS's codes carry none: omitted, as Google omits it
    keys = enx_keys(3)
    status, certified = phone.certificate(verified["token"], keys)
    assert status == 200, certified

    header, claims = jwt_claims(certified["certificate"])
    assert header == {"alg": "ES256", "kid": "v1", "typ": "JWT"}
    now = int(datetime.now(UTC).timestamp())
    assert claims["iss"] == "nz.govt.health.covidtracer"
    assert claims["aud"] == "nz.govt.health.covidtracer.keyserver"
    assert claims["iat"] == claims["nbf"] and now - 15 <= claims["iat"] <= now - 4
    assert now + 14 * 60 <= claims["exp"] <= now + 15 * 60 + 5
    assert claims["reportType"] == "confirmed"
    assert claims["symptomOnsetInterval"] == int(
        datetime.combine(onset, datetime.min.time(), UTC).timestamp() // 600
    )
    assert claims["tekmac"] == tekmac(keys, phone.secret)
    _assert_signed_by_the_kms_key(certified["certificate"], enf_env)

    status, published = phone.publish(certified["certificate"], keys)
    assert status == 200, published
    assert published["insertedExposures"] == 3
    assert published["revisionToken"] and len(base64.b64decode(published["padding"])) >= 1024
    assert set(published) == {"insertedExposures", "revisionToken", "padding"}
    stored = _stored(enf_env)
    assert [row[1:] for row in stored] == [(CONFIRMED_TEST, row[2], 2, None) for row in stored]
    assert sorted(row[2] for row in stored) == [0, 1, 2]  # days since the NCTS onset

    index, batches = _export(datetime.now(UTC) + timedelta(days=1))
    assert index and all(line.startswith("exposures/") for line in index)
    exported = {base64.b64encode(k.key_data).decode(): k for b in batches for k in b.keys}
    for key in keys:
        assert exported[key["key"]].report_type == CONFIRMED_TEST


def _assert_signed_by_the_kms_key(certificate: str, env: dict[str, str]) -> None:
    import boto3
    import jwt
    from cryptography.hazmat.primitives import serialization

    kms = boto3.client("kms", region_name=env["AWS_REGION"], endpoint_url=env["AWS_ENDPOINT_URL"])
    der = kms.get_public_key(KeyId=env["ENF_CERTIFICATE_SIGNING_KEY_ID"])["PublicKey"]
    key = serialization.load_der_public_key(der)
    claims = jwt.decode(
        certificate, key, algorithms=["ES256"], audience="nz.govt.health.covidtracer.keyserver"
    )
    assert claims["reportType"] == "confirmed"


def test_a_retry_of_the_very_same_publish_after_a_lost_answer_succeeds(
    client: Client, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = _phone(client, enf_env)
    keys = enx_keys(2)
    status, verified = phone.verify(request_code(client, enf_env, outbox))
    status, certified = phone.certificate(verified["token"], keys)
    first = phone.publish(certified["certificate"], keys)
    phone.revision_token = ""  # the answer (and its token) never reached the phone
    again = phone.publish(certified["certificate"], keys)
    assert first[0] == again[0] == 200, (first, again)
    assert again[1]["insertedExposures"] == first[1]["insertedExposures"] == 2
    assert again[1]["revisionToken"]  # a token for the same keys: the phone can revise later
    assert len(_stored(enf_env)) == 2
    # A different key set under the spent certificate is refused (the tekmac binds keys).
    other = enx_keys(1)
    status, refused = phone.publish(certified["certificate"], other)
    assert (status, refused["code"]) == (401, "health_authority_verification_certificate_invalid")


def test_a_likely_report_is_revised_to_confirmed_with_its_revision_token_and_exported_as_revised(
    client: Client, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = _phone(client, enf_env)
    keys = enx_keys(2)
    likely = request_code(client, enf_env, outbox, test_type="likely")
    status, answer = phone.share(likely, keys)
    assert status == 200 and answer["insertedExposures"] == 2, answer

    confirmed = request_code(client, enf_env, outbox, test_type="confirmed")
    token, phone.revision_token = phone.revision_token, ""
    status, refused = phone.share(confirmed, keys)
    assert (status, refused["code"]) == (400, "missing_revision_token")

    confirmed = request_code(client, enf_env, outbox, test_type="confirmed")
    phone.revision_token = token
    status, revised = phone.share(confirmed, keys)
    assert status == 200, revised
    assert "insertedExposures" not in revised  # revised, not inserted (Go's omitempty)
    assert [row[4] for row in _stored(enf_env)] == [CONFIRMED_TEST, CONFIRMED_TEST]
    # The day's file: the keys as first published (likely), and revised (confirmed).
    _, batches = _export(datetime.now(UTC) + timedelta(days=1))
    assert {k.report_type for b in batches for k in b.keys} == {CONFIRMED_CLINICAL_DIAGNOSIS}
    revised_keys = {
        base64.b64encode(k.key_data).decode(): k for b in batches for k in b.revised_keys
    }
    assert set(revised_keys) == {k["key"] for k in keys}
    assert {k.report_type for k in revised_keys.values()} == {CONFIRMED_TEST}

    # A key is revised once (exposure_model.go Revise): a later revocation is refused.
    negative = request_code(client, enf_env, outbox, test_type="negative")
    status, refused = phone.share(negative, keys)
    assert (status, refused["code"]) == (400, "key_already_revised")


def test_a_code_is_single_use_across_both_contracts(
    client: Client, enf_env: dict[str, str], outbox: Any
) -> None:
    enx = _phone(client, enf_env)
    app = Phone(client)
    code = request_code(client, enf_env, outbox)
    assert app.verify(code).status_code == 200
    status, answer = enx.verify(code)
    assert (status, answer["errorCode"]) == (400, "code_invalid")

    code = request_code(client, enf_env, outbox)
    assert enx.verify(code)[0] == 200
    app = Phone(client)  # a registration of its own: one guess a second each
    app_answer = app.request("POST", "/exposures/verify", {"hash": app_hash(code)})
    assert app_answer.status_code == 403


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({"code": "123456"}, {}, 401, ""),
        ({"code": "12345"}, None, 400, "code_not_found"),
        ({"code": 123456}, None, 400, "unparsable_request"),
        ({"code": "123456", "extra": 1}, None, 400, "unparsable_request"),
        ({"code": "123456", "accept": ["positive"]}, None, 400, "invalid_test_type"),
    ],
)
def test_api_verify_answers_in_the_verification_servers_error_shape(
    client: Client, enf_env: dict[str, str], body: Any, headers: Any, status: int, code: str
) -> None:
    apps = json.loads(secret(enf_env, "ENF_APPS_SECRET_ID"))
    sent = {"X-API-Key": apps["apiKey"]} if headers is None else headers
    answer, payload = _post(client)("/api/verify", body, sent)
    assert answer == status
    assert payload["errorCode"] == payload["error_code"] == code
    assert isinstance(payload["error"], str) and "123456" not in payload["error"]


def test_a_code_of_a_type_the_phone_cannot_process_is_412_and_stays_usable(
    client: Client, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = _phone(client, enf_env)
    code = request_code(client, enf_env, outbox, test_type="likely")
    status, refused = phone.verify(code, accept=["confirmed"])
    assert (status, refused["errorCode"]) == (412, "unsupported_test_type")
    status, verified = phone.verify(code, accept=["likely"])
    assert status == 200 and verified["testtype"] == "likely"


def test_a_verification_token_is_good_for_one_certificate(
    client: Client, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = _phone(client, enf_env)
    status, verified = phone.verify(request_code(client, enf_env, outbox))
    keys = enx_keys(1)
    assert phone.certificate(verified["token"], keys)[0] == 200
    status, refused = phone.certificate(verified["token"], keys)
    assert (status, refused["errorCode"]) == (400, "token_invalid")
    status, refused = phone.certificate("not-a-token", keys)
    assert (status, refused["errorCode"]) == (400, "token_invalid")
    status, refused = phone.post(
        "/api/certificate",
        {"token": verified["token"], "ekeyhmac": "c2hvcnQ="},
        {"X-API-Key": phone.api_key},
    )
    assert (status, refused["errorCode"]) == (400, "hmac_invalid")


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b"{}", 415),
        ("application/json", b'{"padding": "' + b"A" * 64_001 + b'"}', 413),
        ("application/json", b'{"unknown": 1}', 400),
        ("application/json", b"{not json", 400),
    ],
)
def test_publish_refuses_what_googles_decoder_refuses(
    client: Client, enf_env: dict[str, str], content_type: str, body: bytes, status: int
) -> None:
    response = client.http.post("/v1/publish", headers={"Content-Type": content_type}, body=body)
    assert response.status_code == status
    answer = json.loads(response.body)
    assert answer["code"] == "bad_request" and answer["padding"]


def test_publish_refuses_an_unknown_health_authority_and_a_bad_certificate(
    client: Client, enf_env: dict[str, str]
) -> None:
    phone = _phone(client, enf_env)
    keys = enx_keys(1)
    phone.health_authority_id = "com.example.other"
    status, answer = phone.publish("a.b.c", keys)
    assert (status, answer["code"]) == (401, "unknown_health_authority_id")
    phone.health_authority_id = "nz.govt.health.covidtracer"
    status, answer = phone.publish("a.b.c", keys)
    assert (status, answer["code"]) == (401, "health_authority_verification_certificate_invalid")


def test_chaff_gets_a_plausible_answer_and_changes_nothing(
    client: Client, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = _phone(client, enf_env)
    app = Phone(client)
    code = request_code(client, enf_env, outbox)
    chaff = {"Content-Type": "application/json", "X-Chaff": "1"}
    for path, body, extra in (
        ("/api/verify", {"code": code}, {"X-API-Key": phone.api_key}),
        ("/v1/publish", {"padding": "x"}, {}),
        ("/exposures/verify", {"hash": app_hash(code)}, {"Authorization": f"Bearer {app.token}"}),
    ):
        response = client.http.post(path, headers={**chaff, **extra}, body=json.dumps(body))
        assert response.status_code == 200, (path, response.body)
    upload = client.http.post(
        "/exposures", headers={**chaff, "Authorization": f"Bearer {app.token}"}, body="{}"
    )
    assert upload.status_code == 204
    # The code was never claimed: the real request still gets it.
    status, verified = phone.verify(code)
    assert status == 200, verified
    # Chaff to the verification API still needs a valid API key (docs/api.md).
    refused = client.http.post("/api/verify", headers=chaff, body="{}")
    assert refused.status_code == 401
    assert _stored(enf_env) == []


def test_a_likely_report_is_revoked_with_a_negative_code_and_exported_as_revoked(
    client: Client, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = _phone(client, enf_env)
    keys = enx_keys(2)
    status, answer = phone.share(request_code(client, enf_env, outbox, test_type="likely"), keys)
    assert status == 200 and answer["insertedExposures"] == 2, answer
    status, revoked = phone.share(request_code(client, enf_env, outbox, test_type="negative"), keys)
    assert status == 200 and "insertedExposures" not in revoked, revoked
    revoked_type = 5  # export.proto ReportType REVOKED
    assert [row[4] for row in _stored(enf_env)] == [revoked_type, revoked_type]
    _, batches = _export(datetime.now(UTC) + timedelta(days=1))
    assert {k.report_type for b in batches for k in b.revised_keys} == {revoked_type}


def test_a_negative_code_stores_no_keys_on_either_contract(
    client: Client, enf_env: dict[str, str], outbox: Any
) -> None:
    status, answer = _phone(client, enf_env).share(
        request_code(client, enf_env, outbox, test_type="negative"), enx_keys(2)
    )
    assert status == 200 and "insertedExposures" not in answer and "revisionToken" not in answer
    app = Phone(client)
    verified = app.verify(request_code(client, enf_env, outbox, test_type="negative"))
    assert verified.status_code == 200, verified.body
    keys = [dict(k, keyData=k["key"], transmissionRiskLevel=0) for k in enx_keys(2)]
    for key in keys:
        del key["key"], key["transmissionRisk"]
    assert app.upload(verified.json_body["token"], keys).status_code == 204
    assert _stored(enf_env) == []


def test_wrong_codes_at_api_verify_refuse_only_their_own_address_and_count_toward_the_guard(
    client: Client, enf_env: dict[str, str], outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19's rules on Google's contract, which has no registration to hold a guesser
    to: only the address's own wrong codes refuse it (429 in Google's shape); a right code
    from another address is looked up whatever this one did; the wrong codes count in the
    same buckets as ``POST /exposures/verify``'s, so they raise that address's guard there."""
    from covidtracer import settings

    monkeypatch.setenv("ENF_VERIFY_FAILURES_PER_IP", "2")
    settings.reset()
    phone = _phone(client, enf_env)
    with from_address(client, "203.0.113.66"):
        for _ in range(2):
            status, answer = phone.verify("000000")
            assert (status, answer["errorCode"]) == (400, "code_not_found")
        response = client.http.post(
            "/api/verify",
            headers={"Content-Type": "application/json", "X-API-Key": phone.api_key},
            body=json.dumps({"code": "000001"}),
        )
        assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
        assert json.loads(response.body)["errorCode"] == ""
    code = request_code(client, enf_env, outbox)
    with from_address(client, "198.51.100.23"):
        status, verified = phone.verify(code)
    assert status == 200 and verified["testtype"] == "confirmed"
