"""`make local` and `make stop` end to end: the real processes, on free ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tracerstack.pytest_plugin import free_port, http, iam_refusals, running_stack, tracerstack
from tracerstack.release import release_version
from tracerstack.stack import SERVICE_NAMES

STACK_KEYS = {
    "details_api",
    "enf_api",
    "aws_endpoint",
    "exposure_events_url",
    "enf_files_url",
    "client_ids",
    "ncts_api_key",
    "ncts",
    "outbox",
    "export_public_key_pem",
    "buckets",
    "iam_denials",
}


def _get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.load(response)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_server_url: str
) -> Iterator[tuple[dict[str, str], Path]]:
    local_dir = tmp_path_factory.mktemp("local")
    with running_stack(local_dir, postgres_server_url) as env:
        yield env, local_dir


def test_up_writes_stack_json_with_every_documented_key(stack: tuple[dict[str, str], Path]) -> None:
    settings = json.loads((stack[1] / "stack.json").read_text())
    assert set(settings) >= STACK_KEYS
    assert set(settings["client_ids"]) == {"ios", "android", "web"}
    assert set(settings["buckets"]) == {"feed", "enf_exports", "user_details", "analytics"}
    assert settings["export_public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_both_apis_report_healthy_dependencies(stack: tuple[dict[str, str], Path]) -> None:
    settings = json.loads((stack[1] / "stack.json").read_text())
    status, details = _get(f"{settings['details_api']}/health")
    assert status == 200 and details["checks"]["dynamodb:personal_details"]["status"] == "ok"
    status, enf = _get(f"{settings['enf_api']}/health")
    assert status == 200 and enf["checks"]["postgresql"]["status"] == "ok"
    # Both APIs report the release they run: this checkout's version.
    assert details["version"] == enf["version"] == release_version()
    assert _get(settings["outbox"]) == (200, [])


def test_a_second_up_says_the_stack_is_running(stack: tuple[dict[str, str], Path]) -> None:
    again = tracerstack(stack[0], "up")
    assert again.returncode == 1
    assert "already running" in again.stdout


def test_an_unknown_job_is_refused_with_the_list_of_jobs(
    stack: tuple[dict[str, str], Path],
) -> None:
    result = tracerstack(stack[0], "job", "nightly")
    assert result.returncode == 1
    assert "unknown job 'nightly'" in result.stdout and "enf-export" in result.stdout


def _post(url: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    answer = http("POST", url, body, {"Authorization": f"Bearer {token}"} if token else None)
    return answer.status, answer.json()


def test_a_person_signs_in_by_hand_over_http(stack: tuple[dict[str, str], Path]) -> None:
    """What the README's "Sign in by hand" does: initiate, read the code from the outbox,
    confirm; the access token verifies against the pool's JWKS served by moto."""
    import re

    import jwt

    settings = json.loads((stack[1] / "stack.json").read_text())
    api, client_id = settings["details_api"], settings["client_ids"]["ios"]
    email = "by-hand@example.nz"
    status, started = _post(f"{api}/user/auth/initiate", {"clientId": client_id, "email": email})
    assert status == 200, started
    _, outbox = _get(settings["outbox"])
    [code] = re.findall(r"\b\d{6}\b", [m for m in outbox if m["to"] == email][-1]["body"])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    body = {"clientId": client_id, "email": email, "verificationId": started["verificationId"]}
    status, answer = _post(f"{api}/user/auth/confirm", {**body, "code": wrong})
    assert (status, answer["type"]) == (400, "urn:errors:invalid-auth-code")
    status, confirmed = _post(f"{api}/user/auth/confirm", {**body, "code": code})
    assert status == 200, confirmed
    assert confirmed["userId"] == started["userId"]
    jwks = jwt.PyJWKClient(
        f"{settings['aws_endpoint']}/{settings['user_pool_id']}/.well-known/jwks.json"
    )
    token = confirmed["accessToken"]
    claims = jwt.decode(token, jwks.get_signing_key_from_jwt(token).key, algorithms=["RS256"])
    assert claims["sub"] == started["userId"] and claims["client_id"] == client_id


# ---------------------------------------------------------------------------- phone journeys
#
# The journeys of issue 10's "done when", against the running stack over HTTP, with every
# answer decoded as the clients decode it (tracerstack.clients, from CLIENTS.md).


def _call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    answer = http(method, url, body, {"Content-Type": "application/json", **(headers or {})})
    return answer.status, answer.headers, answer.body


def _settings(stack: tuple[dict[str, str], Path]) -> dict[str, Any]:
    return json.loads((stack[1] / "stack.json").read_text())  # type: ignore[no-any-return]


def _sign_in(settings: dict[str, Any], email: str) -> tuple[str, str]:
    """(userId, access token) through initiate, the outbox's code and confirm."""
    import re

    api, client_id = settings["details_api"], settings["client_ids"]["ios"]
    status, started = _post(f"{api}/user/auth/initiate", {"clientId": client_id, "email": email})
    assert status == 200, started
    _, outbox = _get(settings["outbox"])
    [code] = re.findall(r"\b\d{6}\b", [m for m in outbox if m["to"] == email][-1]["body"])
    body = {"clientId": client_id, "email": email, "verificationId": started["verificationId"]}
    status, confirmed = _post(f"{api}/user/auth/confirm", {**body, "code": code})
    assert status == 200, confirmed
    return confirmed["userId"], confirmed["accessToken"]


def _aws(settings: dict[str, Any], service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        region_name="ap-southeast-2",
        endpoint_url=settings["aws_endpoint"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.mark.contract
def test_the_onboarding_patch_creates_the_record_and_reaches_the_ncts_export(
    stack: tuple[dict[str, str], Path],
) -> None:
    import time

    settings = _settings(stack)
    user_id, token = _sign_in(settings, "onboarding@example.nz")
    onboarding = {"firstName": "Kiri", "lastName": "Ngata", "phone": "+64 210 123 456"}
    status, _, body = _call(
        "PATCH", f"{settings['details_api']}/user/details", onboarding,
        {"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert status == 200, body
    s3, bucket = _aws(settings, "s3"), settings["buckets"]["user_details"]
    deadline = time.monotonic() + 60
    while True:  # the stream poller queues the change; the export job writes the file
        assert tracerstack(stack[0], "job", "details-export").returncode == 0
        lines = []
        for item in s3.list_objects_v2(Bucket=bucket, Prefix="personal-details/").get(
            "Contents", []
        ):
            text = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            lines += [json.loads(line) for line in text.splitlines()]
        mine = [line for line in lines if line["userId"] == user_id]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert mine and mine[-1]["firstName"] == "Kiri" and mine[-1]["phone"] == "+64210123456"


@pytest.mark.contract
def test_the_feed_is_read_anonymously_at_the_url_stack_json_publishes(
    stack: tuple[dict[str, str], Path],
) -> None:
    from datetime import UTC, datetime, timedelta

    from tracerstack import clients

    settings = _settings(stack)
    # Published at start-up: the URL answers 200 before any event arrives.
    with urllib.request.urlopen(settings["exposure_events_url"], timeout=10) as response:
        assert response.status == 200
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    event = {
        "eventId": "a0l4a0000004xhcAAA", "notificationId": "a1k4a000000StackX",
        "gln": "1234567890001", "start": start.isoformat().replace("+00:00", "Z"),
        "end": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "systemNotificationBody": "You were at a location of interest.",
        "appBannerTitle": "Location of interest", "appBannerBody": "Call Healthline.",
    }  # fmt: skip
    status, _, body = _call(
        "POST", f"{settings['details_api']}/ncts/exposure-events", event,
        {"x-api-key": settings["ncts_api_key"]},
    )  # fmt: skip
    assert status in (200, 201), body
    request = urllib.request.Request(settings["exposure_events_url"])  # no credential at all
    with urllib.request.urlopen(request, timeout=10) as response:
        items = clients.app_feed(response.read(), dict(response.headers))
        assert "cloudfront" in response.headers["Via"].lower()
    assert "a1k4a000000StackX" in {item["notificationId"] for item in items}
    direct = (
        f"{settings['aws_endpoint']}/{settings['buckets']['feed']}/current-exposure-events.json"
    )
    assert _call("GET", direct)[0] == 403  # the bucket itself stays private
    _, outbox = _get(settings["outbox"])
    pushed = [json.loads(m["body"]) for m in outbox if m["channel"] == "push"]
    assert any(
        item["notificationId"] == "a1k4a000000StackX"
        for message in pushed
        for item in clients.push(message)
    )


@pytest.mark.contract
def test_a_3000_entry_diary_reaches_the_ncts_stand_in(stack: tuple[dict[str, str], Path]) -> None:
    from datetime import UTC, datetime, timedelta

    settings = _settings(stack)
    status, issued = _post(f"{settings['ncts']}/consent-codes", {})
    assert status == 201
    now = datetime.now(UTC)
    diary = [
        {
            "gln": f"94293{n:08d}", "locationName": f"Place {n}", "note": "", "entryType": 0,
            "time": (now - timedelta(minutes=20 * n + 5)).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        for n in range(3_000)
    ]  # fmt: skip
    body = {"consentCode": issued["consentCode"], "locations": diary}
    status, _, answer = _call("POST", f"{settings['details_api']}/v2/user/location-history", body)
    assert status == 204, answer
    _, outbox = _get(settings["outbox"])
    [sent] = [
        m for m in outbox if m["to"] == "location-history" and issued["consentCode"] in m["body"]
    ]
    assert json.loads(sent["body"])["locations"] == diary


class _Phone:
    """A registered phone over HTTP (platform ``test``, as the local stack allows)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        from tracerstack import clients

        self.enf = settings["enf_api"]
        self.settings = settings
        nonce = clients.registration(json.loads(_call("POST", f"{self.enf}/register", {})[2]))
        status, _, body = _call(
            "PUT", f"{self.enf}/register",
            {"nonce": nonce, "platform": "test", "deviceVerificationPayload": "x"},
        )  # fmt: skip
        assert status == 200, body
        self.token = clients.registration_tokens(json.loads(body))["token"]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        # Android's Accept for every request of the plugin (CLIENTS.md: GET /data).
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/zip"}
        status, _, answer = _call(method, f"{self.enf}{path}", body, headers)
        return status, answer

    def upload(self, onset: str, keys: list[dict[str, Any]]) -> int:
        import hashlib
        import re

        from tracerstack import clients

        status, _, body = _call(
            "POST", f"{self.enf}/ncts/verification-codes",
            {"phone": "+64210000000", "symptomOnset": onset},
            {"x-api-key": self.settings["ncts_api_key"]},
        )  # fmt: skip
        assert status == 201, body
        _, outbox = _get(self.settings["outbox"])
        [code] = re.findall(r"\b\d{6}\b", [m for m in outbox if m["channel"] == "sms"][-1]["body"])
        app_hash = "".join(hashlib.sha512(c.encode()).hexdigest() for c in (code[:3], code))
        status, answer = self.call("POST", "/exposures/verify", {"hash": app_hash})
        assert status == 200, answer
        upload = {
            "token": clients.token(json.loads(answer)), "platform": "test",
            "deviceVerificationPayload": "x", "exposures": keys,
        }  # fmt: skip
        return self.call("POST", "/exposures", upload)[0]

    def listed_keys(self, since: int, limit: int) -> tuple[list[dict[str, Any]], set[str]]:
        """Android's listing (``/exposures/?since=&limit=``) and the keys in those files."""
        import base64

        from tracerstack import clients
        from tracerstack.exportreader import read_export_zip

        status, body = self.call("GET", f"/exposures/?since={since}&limit={limit}&os=android")
        assert status == 200, body
        files = clients.exposure_files(json.loads(body))
        keys: set[str] = set()
        for file in files:
            status, archive = self.call("GET", f"/data/{file['path']}")
            assert status == 200
            batch, _ = read_export_zip(archive)
            keys |= {base64.b64encode(k.key_data).decode() for k in batch.keys}
        return files, keys


def _keys(starts: list[int], period: int) -> list[dict[str, Any]]:
    import base64

    return [
        {"keyData": base64.b64encode(os.urandom(16)).decode(), "rollingStartNumber": start,
         "rollingPeriod": period, "transmissionRiskLevel": 4}
        for start in starts
    ]  # fmt: skip


@pytest.mark.contract
@pytest.mark.timeout(420)
def test_uploads_are_stored_and_listed_within_the_local_window(
    stack: tuple[dict[str, str], Path],
) -> None:
    """The README's by-hand journey (its own shell block, run as written), a 15-key and a
    30-key upload; Android decodes the settings, lists with its ``limit`` and finds every
    stored key whose embargo is over within the local window (1 minute, a run a minute)."""
    import re
    import time
    from datetime import UTC, datetime, timedelta

    from tracerstack import clients

    settings = _settings(stack)
    phone = _Phone(settings)
    _, body = phone.call("GET", "/settings/exposures?os=android&version=8.0.0")
    android = clients.android_exposure_config(json.loads(body))
    clients.ios_exposure_config(json.loads(phone.call("GET", "/settings/exposures?os=ios")[1]))
    limit = android["numFilesAndroid"]
    before, _ = phone.listed_keys(0, 1000)
    since = clients.next_since(before, 0)

    readme = (Path(__file__).resolve().parents[4] / "README.md").read_text()
    section = readme.split("## An exposure-notification upload by hand", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    upload_part = block.split("sleep ", 1)[0].replace(
        ".local/stack.json", str(stack[1] / "stack.json")
    )
    started = time.monotonic()
    ran = subprocess.run(
        ["bash", "-c", f"set -e\n{upload_part}\necho \"KEYDATA=$KEYDATA\""],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert re.search(r"^204$", ran.stdout, re.M), ran.stdout
    readme_key = ran.stdout.rsplit("KEYDATA=", 1)[1].strip()

    now = datetime.now(UTC)
    today = int(now.timestamp()) // 600 // 144 * 144
    fifteen = _keys([today - 144 * day for day in range(15)], 144)  # today + 14 days
    assert phone.upload((now - timedelta(days=3)).date().isoformat(), fifteen) == 204
    halves = [today - 144 * day + half for day in range(16) for half in (0, 72)]
    thirty = _keys([s for s in halves if s <= int(now.timestamp()) // 600][:30], 72)
    assert len(thirty) == 30
    # Another case's phone (a registration may try a code once a second).
    assert _Phone(settings).upload((now - timedelta(days=10)).date().isoformat(), thirty) == 204

    def published(key: dict[str, Any]) -> bool:  # stored, and its embargo is over by now
        end = (key["rollingStartNumber"] + key["rollingPeriod"]) * 600 + 2 * 3600
        return end <= time.time()

    infectious_fifteen = [  # onset 3 days ago: days -5 .. +3 are scored, so stored
        k for day, k in enumerate(fifteen) if -5 <= 3 - day <= 10
    ]
    expected = {readme_key} | {k["keyData"] for k in (*infectious_fifteen, *thirty) if published(k)}
    dropped = {k["keyData"] for k in fifteen if k not in infectious_fifteen}
    deadline = started + 300
    while True:
        files, keys = phone.listed_keys(since, limit)
        if expected <= keys or time.monotonic() > deadline:
            break
        time.sleep(5)
    elapsed = time.monotonic() - started
    print(f"uploads listed {elapsed:.0f} s after the README's upload")
    assert expected <= keys, f"not listed after {elapsed:.0f} s"
    assert not keys & dropped
    assert len(files) <= 15  # what a new phone would fetch
    assert elapsed <= 200  # the window, the settle minute, one per-minute run, and margin


@pytest.mark.contract
def test_the_notification_settings_give_an_alert_over_http(
    stack: tuple[dict[str, str], Path],
) -> None:
    from tracerstack import clients

    settings = _settings(stack)
    status, answer = _get(f"{settings['enf_api']}/settings/notification")
    document = clients.app_notification_settings(answer)
    assert status == 200 and clients.app_alert(document, 42.5) is not None
    phone = _Phone(settings)
    for event in ("CONTACT_NOTIFICATION", "DAILY_ACTIVE_TRACE", "LOG_ERROR", "CALLBACK_REQUEST"):
        body = {"os": "ios", "event": event, "version": "8.0.0", "payload": {"a": 1}}
        assert phone.call("POST", "/metrics", body)[0] == 204


def _chalice_local(service: str, env: dict[str, str]) -> tuple[int, Any, str]:
    """`cd services/<service> && chalice local`, the Chalice habit: its default stage, no
    STAGE of its own; answers GET /health once, then stops."""
    import time

    port = free_port()
    argv = [sys.executable, "-c", "from chalice.cli import main; main()", "local"]
    process = subprocess.Popen(
        [*argv, "--no-autoreload", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[4] / "services" / service,
        env={k: v for k, v in env.items() if k != "STAGE"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/health")
                break
            except urllib.error.HTTPError as error:
                status, body = error.code, json.load(error)
                break
            except OSError:
                assert time.monotonic() < deadline, "chalice local did not answer"
                time.sleep(0.2)
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    return status, body, output


def test_chalice_local_in_a_service_folder_serves_it_with_the_stacks_settings(
    stack: tuple[dict[str, str], Path],
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_"))}
    status, body, _ = _chalice_local("details", {**env, "COVIDTRACER_LOCAL_DIR": str(stack[1])})
    assert status == 200 and body["checks"]["dynamodb:personal_details"]["status"] == "ok"


def test_chalice_local_without_the_stack_says_what_is_missing_in_its_log(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATABASE_"))}
    status, body, output = _chalice_local("enf", {**env, "COVIDTRACER_LOCAL_DIR": str(tmp_path)})
    assert (status, body["type"]) == (503, "urn:errors:unavailable")
    assert "settings are invalid" in output and "start the stack with `make local`" in output
    assert "Traceback" not in output


def _session(env: dict[str, str]) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        region_name=env["AWS_REGION"],
    )


def test_each_service_signs_as_its_own_role_and_moto_refuses_what_it_may_not(
    stack: tuple[dict[str, str], Path],
) -> None:
    from botocore.exceptions import ClientError

    local_dir = stack[1]
    settings = json.loads((local_dir / "stack.json").read_text())
    envs = {s: json.loads((local_dir / f"env-{s}.json").read_text()) for s in SERVICE_NAMES}
    keys = {env["AWS_ACCESS_KEY_ID"] for env in envs.values()}
    assert len(keys) == 4 and "testing" not in keys  # four roles, none the administrator
    endpoint = settings["aws_endpoint"]
    # The details API may not read the ENF files, nor the ENF API a person's details.
    details = _session(envs["details"]).client("s3", endpoint_url=endpoint)
    with pytest.raises(ClientError) as read_files:
        details.get_object(Bucket=settings["buckets"]["enf_exports"], Key="exposures/index.txt")
    enf = _session(envs["enf"]).client("dynamodb", endpoint_url=endpoint)
    with pytest.raises(ClientError) as read_details:
        enf.get_item(
            TableName=envs["enf"]["PERSONAL_DETAILS_TABLE"], Key={"userId": {"S": "someone"}}
        )
    assert read_files.value.response["Error"]["Code"] == "AccessDenied"
    assert read_details.value.response["Error"]["Code"] == "AccessDeniedException"
    refused = http("GET", settings["iam_denials"]).json()
    assert [(d["principal"].split("/")[1], d["action"]) for d in refused] == [
        ("covidtracer-local-details", "s3:GetObject"),
        ("covidtracer-local-enf", "dynamodb:GetItem"),
    ]
    http("DELETE", settings["iam_denials"])  # provoked here: not a service's mistake


def test_down_ends_every_process_it_started_and_only_those(
    stack: tuple[dict[str, str], Path],
) -> None:
    env, local_dir = stack
    run = json.loads((local_dir / "run.json").read_text())
    pids = [record["pid"] for record in run["processes"]]
    # moto, PgBouncer, the log shipper, partners, edge, two APIs, scheduler, stream poller
    assert len(pids) == 9
    assert iam_refusals(env) == []  # the journeys above ran within every role
    stopped = tracerstack(env, "down")
    assert stopped.returncode == 0, stopped.stdout
    for pid in pids:
        # Gone, or a zombie its new parent has yet to reap.
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (local_dir / "run.json").exists()
