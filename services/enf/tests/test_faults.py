"""Faults, each taken away and given back while the ENF API works (issue 11): PostgreSQL
gone mid-upload and mid-export, the AWS endpoint gone, each partner down then back. Each
outage is a 503 (or a failed job run), nothing is half-done, and once the dependency is
back the same request succeeds with nothing lost or stored twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest
from chalice.test import Client
from conftest import Phone, request_code, sql
from conftest import secret as secret_of

from covidtracer import aws, db, settings
from covidtracer.enfkeys.settings import enf_settings
from tracerstack.faults import TcpProxy, with_port
from tracerstack.samples import daily_keys


def _wait_until(env: dict[str, str], count_query: str, done: bool, what: str) -> None:
    """Poll ``count_query`` (sessions of this database, other than the poller's) until its
    count is non-zero (``done``) or zero (not ``done``), for at most 20 seconds."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if bool(sql(env, count_query)[0][0]) == done:
            return
        time.sleep(0.02)
    raise AssertionError(what)


def _wait_for_lock_wait(env: dict[str, str]) -> None:
    """Until some other session of this database waits on a lock: the request is in flight."""
    _wait_until(
        env,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'",
        True,
        "the request never reached the database",
    )


def _wait_until_quiet(env: dict[str, str]) -> None:
    """Until no other session of this database runs a statement: an orphaned one (its client
    gone) has finished, committed or rolled back."""
    _wait_until(
        env,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state <> 'idle' AND pid <> pg_backend_pid()",
        False,
        "a statement is still running",
    )


@pytest.fixture
def pg_proxy(enf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    """The service's DATABASE_URL through a proxy the test can cut (tests' own direct
    connections keep enf_env's URL)."""
    url = enf_env["DATABASE_URL"]
    with TcpProxy.for_url(url, 5432) as proxy:
        monkeypatch.setenv("DATABASE_URL", with_port(url, proxy.port))
        settings.reset()
        db.close()
        yield proxy
        monkeypatch.setenv("DATABASE_URL", url)
        settings.reset()
        db.close()


def test_postgresql_gone_mid_upload_is_a_503_and_the_retry_stores_every_key_once(
    pg_proxy: TcpProxy, client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = Phone(client)
    token = phone.verify(request_code(client, enf_env, outbox)).json_body["token"]
    keys = daily_keys(4)
    locker = psycopg2.connect(enf_env["DATABASE_URL"])
    with locker.cursor() as cur:  # holds the token's row: the upload waits mid-statement
        cur.execute("SELECT 1 FROM upload_tokens WHERE id = %s FOR UPDATE", (token,))
    answer: dict[str, Any] = {}
    upload = threading.Thread(target=lambda: answer.update(r=phone.upload(token, keys)))
    upload.start()
    _wait_for_lock_wait(enf_env)
    pg_proxy.cut()
    upload.join(timeout=30)
    locker.rollback()
    locker.close()
    assert answer["r"].status_code == 503, answer["r"].body
    assert json.loads(answer["r"].body)["type"] == "urn:errors:unavailable"
    assert phone.upload(token, keys).status_code == 503  # still gone: a 503, not a crash
    # The statement reached the server before the connection went: PostgreSQL finishes it
    # once the lock is free, so the upload committed (all of it) or not at all.
    _wait_until_quiet(enf_env)
    claimed = sql(enf_env, "SELECT claimed_at IS NOT NULL FROM upload_tokens")[0][0]
    stored_now = sql(enf_env, "SELECT count(*) FROM exposures")[0][0]
    assert (stored_now > 0) == claimed

    pg_proxy.restore()
    # The phone retries the same upload: a success whether or not the first one committed.
    assert phone.upload(token, keys).status_code == 204
    assert phone.upload(token, list(reversed(keys))).status_code == 204  # same keys again
    assert phone.upload(token, daily_keys(2)).status_code == 403  # other keys: token used
    stored = sql(enf_env, "SELECT count(*), count(DISTINCT key_data) FROM exposures")[0]
    assert stored[0] == stored[1] >= 1  # every kept key, once


def _insert_keys(env: dict[str, str], count: int, created: datetime) -> set[bytes]:
    rsn = int(created.timestamp()) // 86_400 * 144 - 144
    keys = {i.to_bytes(16, "big") for i in range(1, count + 1)}
    with psycopg2.connect(env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        for key in keys:
            cur.execute(
                "INSERT INTO exposures (key_data, rolling_start_number, rolling_period,"
                " transmission_risk_level, created_at) VALUES (%s, %s, 144, 2, %s)",
                (key, rsn, created),
            )
    return keys


def test_postgresql_gone_mid_export_fails_the_run_and_the_next_run_exports_every_key_once(
    pg_proxy: TcpProxy, enf_env: dict[str, str]
) -> None:
    from covidtracer.enffiles import service as files
    from covidtracer.enffiles import wiring as files_wiring
    from tracerstack.exportreader import read_export_zip

    now = datetime(2021, 10, 15, 13, 30, tzinfo=UTC)
    keys = _insert_keys(enf_env, 40, now - timedelta(days=2))
    config = enf_settings()
    deps = files_wiring.deps_for(config)
    store = deps.store
    locker = psycopg2.connect(enf_env["DATABASE_URL"])
    with locker.cursor() as cur:  # the export waits on its read of the keys
        cur.execute("LOCK TABLE exposures IN ACCESS EXCLUSIVE MODE")
    failure: list[BaseException] = []

    def run() -> None:
        try:
            files.export_keys(deps, files.ExportRun(), now)
        except Exception as error:
            failure.append(error)

    job = threading.Thread(target=run)
    job.start()
    _wait_for_lock_wait(enf_env)
    pg_proxy.cut()
    job.join(timeout=60)
    locker.rollback()
    locker.close()
    assert failure, "the run must fail when its database goes"
    assert sql(enf_env, "SELECT count(*) FROM export_files") == [(0,)]  # nothing recorded

    pg_proxy.restore()
    later = now + timedelta(seconds=config.export.lease_seconds + 1)  # the dead run's lease
    result = files.export_keys(deps, files.ExportRun(), later)
    assert not result.skipped and result.files >= 1
    paths = [row[0] for row in sql(enf_env, "SELECT path FROM export_files")]
    exported: list[bytes] = []
    for path in paths:
        batch, _ = read_export_zip(store.get(path))
        exported += [key.key_data for key in batch.keys]
    assert set(exported) == keys
    assert files.export_keys(deps, files.ExportRun(), later).files == 0  # re-run: same


@pytest.fixture
def aws_proxy(enf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    url = enf_env["AWS_ENDPOINT_URL"]
    # One attempt per AWS call: the outage is what is tested, not botocore's backoff (each
    # refused call would otherwise wait through its retries).
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with TcpProxy.for_url(url, 80) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", with_port(url, proxy.port))
        settings.reset()
        aws.reset()
        yield proxy
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)  # later tests must not inherit the proxy
        settings.reset()
        aws.reset()


def test_the_aws_endpoint_gone_is_a_503_and_everything_works_once_it_is_back(
    aws_proxy: TcpProxy, enf_env: dict[str, str], outbox: Any
) -> None:
    from app import app

    today = datetime.now(UTC).date().isoformat()
    body = json.dumps({"phone": "+64210123456", "symptomOnset": today})
    json_headers = {"Content-Type": "application/json"}
    with Client(app) as client:
        aws_proxy.cut()
        nonce = json.loads(client.http.post("/register", body=b"").body)["nonce"]  # no AWS
        attest = json.dumps({"nonce": nonce, "platform": "test", "deviceVerificationPayload": "x"})
        response = client.http.put("/register", headers=json_headers, body=attest)
        assert response.status_code == 503, response.body  # the signing key is in AWS
        assert client.http.get("/health").status_code == 503
        response = client.http.post(
            "/ncts/verification-codes", headers={**json_headers, "x-api-key": "k"}, body=body
        )
        assert response.status_code == 503, response.body
        aws_proxy.restore()
        assert client.http.put("/register", headers=json_headers, body=attest).status_code == 200
        phone = Phone(client)
        assert client.http.get("/health").status_code == 200
        token = phone.verify(request_code(client, enf_env, outbox)).json_body["token"]
        assert phone.upload(token, daily_keys(2)).status_code == 204


@pytest.mark.parametrize("status", [503, 500])
def test_the_sms_provider_down_then_back(
    client: Any, enf_env: dict[str, str], outbox: Any, status: int
) -> None:
    outbox.outage("sms", status)
    with pytest.raises(AssertionError):
        request_code(client, enf_env, outbox)  # 503: NCTS retries
    assert sql(enf_env, "SELECT count(*) FROM verification_codes") == [(0,)]
    outbox.clear()
    phone = Phone(client)
    assert phone.verify(request_code(client, enf_env, outbox)).status_code == 200


def test_ncts_down_then_back_for_a_callback_and_the_503s_are_refunded(
    client: Any, outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NCTS_BACKOFF_MS", "0")  # the outage is tested, not the backoff
    settings.reset()
    phone = Phone(client)
    outbox.outage("ncts", 503)
    for _ in range(3):
        response = phone.request("POST", "/callback", {"phone": "+64210123456"})
        assert response.status_code == 503
    outbox.clear()
    assert phone.request("POST", "/callback", {"phone": "+64210123456"}).status_code == 204
    assert [m["to"] for m in outbox.outbox()] == ["callback-requests"]


def test_apple_devicecheck_down_then_back_and_the_attempts_are_refunded(
    enf_env: dict[str, str],
    partners: Any,
    apple_devicecheck_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENF_REGISTER_PER_IP", "6")  # 3 POSTs + 3 PUTs would use it all up
    settings.reset()
    from app import app

    with Client(app) as client:
        nonce = json.loads(client.http.post("/register", body=b"").body)["nonce"]
        body = json.dumps({"nonce": nonce, "platform": "ios", "deviceVerificationPayload": "t"})
        headers = {"Content-Type": "application/json"}
        partners.outage("devicecheck", 503)
        for _ in range(4):
            assert client.http.put("/register", headers=headers, body=body).status_code == 503
        partners.clear()
        assert client.http.put("/register", headers=headers, body=body).status_code == 200


def test_aws_gone_is_a_503_in_googles_shapes_and_a_token_survives_a_kms_outage(
    aws_proxy: TcpProxy, enf_env: dict[str, str], outbox: Any
) -> None:
    """Google's routes (issue 21): the apps secret, the certificate key (KMS) and the
    revision keys are in AWS; an outage is a 503 in the route's own shape, and the
    verification token whose certificate KMS could not sign is still good afterwards."""
    from app import app

    from tracerstack.enx import EnxPhone, enx_keys

    def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        response = client.http.post(
            path, headers={"Content-Type": "application/json", **headers}, body=json.dumps(body)
        )
        return response.status_code, json.loads(response.body)

    with Client(app) as client:
        code = request_code(client, enf_env, outbox)
        api_key = json.loads(secret_of(enf_env, "ENF_APPS_SECRET_ID"))["apiKey"]
        phone = EnxPhone(post, api_key, "nz.govt.health.covidtracer")
        keys = enx_keys(2)
        aws_proxy.cut()
        status, answer = phone.verify(code)
        assert (status, answer["errorCode"]) == (503, "internal_server_error")  # apps secret
        status, answer = phone.publish("a.b.c", keys)
        assert (status, answer["code"]) == (503, "unable_to_load_health_authority")
        aws_proxy.restore()
        status, verified = phone.verify(code)  # the 503 claimed nothing
        assert status == 200, verified
        aws_proxy.cut()
        status, answer = phone.certificate(verified["token"], keys)
        assert (status, answer["errorCode"]) == (503, "internal_server_error")  # KMS Sign
        aws_proxy.restore()
        status, certified = phone.certificate(verified["token"], keys)
        assert status == 200, certified
        status, published = phone.publish(certified["certificate"], keys)
        assert (status, published["insertedExposures"]) == (200, 2)
