"""Issue 14 end to end: a day of journeys against `make local`'s processes over HTTP, then the
analytics bucket holds the services' events — none carrying personal data — and the
`usage-report` job's CSV has exactly the figures those journeys produced."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import psycopg2
import pytest

from covidtracer.analytics import model
from tracerstack.pytest_plugin import http, running_stack, tracerstack

ADMIN_CSV = "reports/usage/nz-covid-tracer-app-usage.csv"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_server_url: str) -> Iterator[Any]:
    local_dir = tmp_path_factory.mktemp("local")
    with running_stack(local_dir, postgres_server_url) as env:
        yield Stack(env, json.loads((local_dir / "stack.json").read_text()))


class Stack:
    def __init__(self, env: dict[str, str], settings: dict[str, Any]) -> None:
        self.env = env
        self.settings = settings
        self.s3 = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing"
        ).client("s3", region_name="ap-southeast-2", endpoint_url=settings["aws_endpoint"])

    def call(
        self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        answer = http(method, url, body, {"Content-Type": "application/json", **(headers or {})})
        return answer.status, answer.json()

    def job(self, name: str) -> str:
        ran = tracerstack(self.env, "job", name)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        return ran.stdout

    def outbox(self) -> list[dict[str, Any]]:
        return self.call("GET", self.settings["outbox"])[1]  # type: ignore[no-any-return]

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        found = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = self.s3.get_object(Bucket=bucket, Key=item["Key"])[
                    "Body"
                ].read()
        return found


class Person:
    """Signs in as the app does and keeps what a scan for personal data must not find."""

    def __init__(self, stack: Stack, email: str) -> None:
        self.stack, self.email = stack, email
        self.user_id = ""
        self.token = ""
        self.secrets: set[str] = {email}

    def sign_in(self, wrong_first: bool = False) -> None:
        api = self.stack.settings["details_api"]
        client_id = self.stack.settings["client_ids"]["ios"]
        status, started = self.stack.call(
            "POST", f"{api}/user/auth/initiate", {"clientId": client_id, "email": self.email}
        )
        assert status == 200, started
        mail = [m for m in self.stack.outbox() if m["to"] == self.email][-1]["body"]
        [code] = re.findall(r"\b\d{6}\b", mail)
        body = {
            "clientId": client_id,
            "email": self.email,
            "verificationId": started["verificationId"],
        }
        if wrong_first:
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            status, _ = self.stack.call("POST", f"{api}/user/auth/confirm", {**body, "code": wrong})
            assert status == 400
        status, confirmed = self.stack.call(
            "POST", f"{api}/user/auth/confirm", {**body, "code": code}
        )
        assert status == 200, confirmed
        self.user_id, self.token = confirmed["userId"], confirmed["accessToken"]
        self.secrets |= {self.user_id, self.token, code, started["verificationId"]}

    def details(self, method: str, body: Any = None) -> tuple[int, Any]:
        for value in (body or {}).values():
            self.secrets.add(str(value))
            self.secrets.add(re.sub(r"\s", "", str(value)))
        return self.stack.call(
            method,
            f"{self.stack.settings['details_api']}/user/details",
            body,
            {"Authorization": f"Bearer {self.token}"},
        )


class Device:
    """An ENF registration (platform ``test``), as the plugin drives it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.api = stack.settings["enf_api"]
        status, nonce = stack.call("POST", f"{self.api}/register", {})
        assert status == 200
        status, tokens = stack.call(
            "PUT",
            f"{self.api}/register",
            {"nonce": nonce["nonce"], "platform": "test", "deviceVerificationPayload": "x"},
        )
        assert status == 200, tokens
        self.token = tokens["token"]
        self.secrets = {nonce["nonce"], tokens["token"], tokens["refreshToken"]}

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self.stack.call(
            "POST", f"{self.api}{path}", body, {"Authorization": f"Bearer {self.token}"}
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _app_hash(code: str) -> str:
    return hashlib.sha512(code[:3].encode()).hexdigest() + hashlib.sha512(code.encode()).hexdigest()


def test_a_day_of_journeys_gives_private_events_and_a_report_that_matches_them(
    stack: Stack,
) -> None:
    settings = stack.settings
    details_api, enf_api = settings["details_api"], settings["enf_api"]
    ncts_key = {"x-api-key": settings["ncts_api_key"]}
    now = datetime.now(UTC)
    secrets: set[str] = {settings["ncts_api_key"]}

    # Sign-ups and sign-ins: two new people, one of whom signs in twice (one wrong code).
    aroha = Person(stack, "aroha.smith@example.nz")
    aroha.sign_in(wrong_first=True)
    assert aroha.details("PUT", {"firstName": "Aroha", "lastName": "Smith",
                                 "phone": "+64 21 012 3456"})[0] == 200  # fmt: skip
    assert aroha.details("PATCH", {"phone": "+64 21 765 4321"})[0] == 200
    tane = Person(stack, "tane.walker@example.nz")
    tane.sign_in()
    assert tane.details("PUT", {"firstName": "Tāne", "lastName": "Walker",
                                "phone": "+64 27 555 0101"})[0] == 200  # fmt: skip
    assert tane.details("DELETE")[0] == 204
    aroha.sign_in()
    secrets |= aroha.secrets | tane.secrets

    # A diary shared with a consent code from NCTS: three recent entries, one past retention.
    status, issued = stack.call("POST", f"{settings['ncts']}/consent-codes", {})
    assert status == 201
    entries = [
        {"gln": "9429300000017", "locationName": "Blue Stone Cafe", "note": "with Sam",
         "entryType": 0, "time": _iso(now - timedelta(days=d))}
        for d in (1, 2, 70)
    ] + [{"gln": "", "locationName": "Nana's place", "note": "", "entryType": 1,
          "time": _iso(now - timedelta(hours=5))}]  # fmt: skip
    status, _ = stack.call(
        "POST",
        f"{details_api}/v2/user/location-history",
        {"consentCode": issued["consentCode"], "locations": entries},
    )
    assert status == 204
    secrets |= {
        issued["consentCode"],
        "9429300000017",
        "Blue Stone Cafe",
        "with Sam",
        "Nana's place",
    }

    # A location of interest from NCTS (sent twice: one alert), and a callback asked for.
    start = now.replace(microsecond=0) - timedelta(days=1)
    exposure = {
        "eventId": "a0l4a0000004xhcAAA", "notificationId": "a1k4a000000DaLsAAK",
        "gln": "1234567890001", "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "systemNotificationBody": "You were at a location of interest.",
        "appBannerTitle": "Location of interest", "appBannerBody": "Isolate and call Healthline.",
        "appBannerLinkLabel": "More", "appBannerLinkUrl": "https://covid19.govt.nz",
        "appBannerRequestCallbackEnabled": True,
    }  # fmt: skip
    assert stack.call("POST", f"{details_api}/ncts/exposure-events", exposure, ncts_key)[0] == 201
    assert stack.call("POST", f"{details_api}/ncts/exposure-events", exposure, ncts_key)[0] == 200
    callback = {"eventId": exposure["eventId"], "notificationId": exposure["notificationId"],
                "gln": "1234567890001", "firstName": "Hemi", "lastName": "Parata",
                "phone": "+64 22 333 4444", "contactNotes": "Call after 5pm"}  # fmt: skip
    assert stack.call("POST", f"{details_api}/v2/exposure-event-matches", callback)[0] == 204
    secrets |= {
        "1234567890001",
        "Hemi",
        "Parata",
        "+64223334444",
        "+64 22 333 4444",
        "Call after 5pm",
    }

    # Bluetooth: two devices; one case gets a code by SMS, fails once, verifies and uploads.
    first, second = Device(stack), Device(stack)
    secrets |= first.secrets | second.secrets
    onset = (now - timedelta(days=3)).date().isoformat()
    status, _ = stack.call(
        "POST",
        f"{enf_api}/ncts/verification-codes",
        {"phone": "+64 21 999 8888", "symptomOnset": onset},
        ncts_key,
    )
    assert status == 201
    sms = [m for m in stack.outbox() if m["channel"] == "sms"][-1]["body"]
    [code] = re.findall(r"\b\d{6}\b", sms)
    secrets |= {code, _app_hash(code), "+64219998888", "+64 21 999 8888"}
    wrong = f"{(int(code) + 7) % 10**6:06d}"
    assert first.post("/exposures/verify", {"hash": _app_hash(wrong)})[0] == 403
    time.sleep(1.2)  # one verify attempt a second per registration
    status, verified = first.post("/exposures/verify", {"hash": _app_hash(code)})
    assert status == 200, verified
    today = int(now.timestamp()) // 600 // 144 * 144
    keys = [
        {"keyData": base64.b64encode(os.urandom(16)).decode(),
         "rollingStartNumber": today - 144 * d, "rollingPeriod": 144, "transmissionRiskLevel": 4}
        for d in range(5)
    ]  # fmt: skip
    secrets |= {verified["token"]} | {k["keyData"] for k in keys}
    upload = {"token": verified["token"], "exposures": keys, "platform": "test",
              "deviceVerificationPayload": "x"}  # fmt: skip
    assert first.post("/exposures", upload)[0] == 204
    for device, os_name in ((first, "ios"), (second, "android")):
        metric = {"os": os_name, "event": "DAILY_ACTIVE_TRACE", "version": "8.0.0"}
        assert device.post("/metrics", metric)[0] == 204
    assert first.post("/metrics", {"os": "ios", "event": "CONTACT_NOTIFICATION",
                                   "version": "8.0.0"})[0] == 204  # fmt: skip
    assert second.post("/callback", {"phone": "+64 21 444 5555", "firstName": "Mere",
                                     "lastName": "Tane"})[0] == 204  # fmt: skip
    secrets |= {"+64214445555", "+64 21 444 5555", "Mere"}

    # The scheduled jobs that do work today: the NCTS details export (once the stream poller
    # has queued both people) and the ENF key export.
    exported: dict[str, bytes] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stack.job("details-export")
        exported = stack.objects(settings["buckets"]["user_details"], "personal-details/")
        ids = {
            json.loads(line)["userId"] for body in exported.values() for line in body.splitlines()
        }
        if {aroha.user_id, tane.user_id} <= ids:
            break
        time.sleep(1)
    exported_users = sum(len(body.splitlines()) for body in exported.values())
    assert exported_users >= 2
    stack.job("enf-export")

    # Every event the processes wrote to their logs reaches the bucket (through the log
    # shipper and each log group's subscription): wait until the count settles, then report.
    analytics = settings["buckets"]["analytics"]
    records = _settled_records(stack, analytics)
    stack.job("usage-report")

    # 1. Every record is a service event of the schema; none carries personal data.
    events = [model.parse_event(r) for r in records]
    assert None not in events, [r for r, e in zip(records, events, strict=True) if e is None]
    # Every value of every record, but the record's own random id (hex digits could spell a
    # six-digit code by chance).
    text = "\n".join(
        json.dumps({k: v for k, v in r.items() if k != "id"}, ensure_ascii=False) for r in records
    ).lower()
    leaked = sorted(s for s in secrets if len(s) >= 4 and s.lower() in text)
    assert leaked == []
    for record in records:
        assert set(record) == model.ENVELOPE
        for value in record["categories"].values():
            assert re.fullmatch(r"[A-Za-z0-9_.]{1,32}", value), value
        assert all(isinstance(v, int) for v in record["counts"].values())

    names = Counter(e.name for e in events if e is not None)
    assert names["account_created"] == 2
    assert names["sign_in_succeeded"] == 3
    assert names["sign_in_code_sent"] == 3
    assert names["contact_details_replaced"] == 2
    assert names["contact_details_updated"] == 1
    assert names["contact_details_deleted"] == 1
    assert {e.service for e in events if e is not None} == {"auth", "details", "export", "enf"}

    # 2. The report's figures are the journeys'.
    with psycopg2.connect(settings["database_url"]) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM exposures WHERE key_data = ANY(%s)",
            ([base64.b64decode(k["keyData"]) for k in keys],),
        )
        (stored_keys,) = cur.fetchone()  # type: ignore[misc]
    assert stored_keys > 0
    rows = list(
        csv.DictReader(io.StringIO(stack.objects(analytics, ADMIN_CSV)[ADMIN_CSV].decode()))
    )
    assert len(rows) == 1
    (row,) = rows
    daily = stack.objects(analytics, f"reports/usage/daily/{row['Date']}.csv")
    assert list(csv.DictReader(io.StringIO(next(iter(daily.values())).decode()))) == rows
    assert row == {
        "Date": row["Date"],
        "App Registrations": "2",
        "Active Devices": "",
        "Bluetooth Active (24h)": "2",
        "Poster Scans": "",
        "Manual Entries": "",
        "Sign-ins": "3",
        "Bluetooth Registrations": "2",
        "Exposure Notifications": "1",
        "Upload Codes Issued": "1",
        "Key Uploads": "1",
        "Keys Uploaded": str(stored_keys),
        "Location Alerts Published": "1",
        "Diaries Shared": "1",
        "Diary Entries Shared": "3",
        "Callbacks Requested": "2",
        "Contact Details Exported": str(exported_users),
    }
    # The row is dated by the end of the 1 pm–1 pm New Zealand day now running.
    from zoneinfo import ZoneInfo

    local = datetime.now(UTC).astimezone(ZoneInfo("Pacific/Auckland"))
    running = local.date() + timedelta(days=1 if local.hour >= 13 else 0)
    assert row["Date"] == running.isoformat()


def _settled_records(stack: Stack, bucket: str) -> list[dict[str, Any]]:
    previous = -1
    records: list[dict[str, Any]] = []
    for _ in range(40):
        records = [
            value
            for body in stack.objects(bucket, "events/").values()
            for value in model.records(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
        ]
        if len(records) == previous:
            return records
        previous = len(records)
        time.sleep(0.5)
    return records


def test_the_stacks_firehose_lands_objects_under_the_templates_date_partitions(
    stack: Stack,
) -> None:
    keys = stack.objects(stack.settings["buckets"]["analytics"], "events/")
    assert keys
    assert all(re.fullmatch(r"events/\d{4}/\d{2}/\d{2}/\d{2}/[^/]+", key) for key in keys)
