"""Concurrent requests through a threaded server (``chalice local``, as the local stack runs
it) behave as Lambda does: no connection, transaction or autocommit switch is shared by two
requests in flight, so every 204 is stored (DESIGN §8; issue 11, failure 1)."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import requests
from conftest import app_hash, secret

from tracerstack.samples import daily_keys

UPLOADS = 20


def _registered(url: str) -> dict[str, str]:
    """A phone registered with the API: its bearer header."""
    session = requests.Session()
    nonce = session.post(f"{url}/register", timeout=10).json()["nonce"]
    token = session.put(
        f"{url}/register",
        json={"nonce": nonce, "platform": "test", "deviceVerificationPayload": "ok"},
        timeout=10,
    ).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _ready_upload(url: str, env: dict[str, str], outbox: Any, phone_number: str) -> dict[str, Any]:
    """Register a phone, have NCTS text it a code, verify: what a case holds before uploading."""
    session = requests.Session()
    bearer = _registered(url)
    onset = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    sent = session.post(
        f"{url}/ncts/verification-codes",
        json={"phone": phone_number, "symptomOnset": onset},
        headers={"x-api-key": secret(env, "NCTS_API_KEY_SECRET_ID")},
        timeout=10,
    )
    assert sent.status_code == 201, sent.text
    text = [m for m in outbox.outbox() if m["channel"] == "sms" and m["to"] == phone_number][-1]
    match = re.search(r"\b(\d{6})\b", text["body"])
    assert match
    verified = session.post(
        f"{url}/exposures/verify", json={"hash": app_hash(match.group(1))}, headers=bearer,
        timeout=10,
    )  # fmt: skip
    assert verified.status_code == 200, verified.text
    return {"bearer": bearer, "token": verified.json()["token"], "keys": daily_keys(4)}


def _all_at_once[T](count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` for each i on its own thread, all released at the same moment."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_twenty_concurrent_uploads_all_answer_204_and_are_all_stored(
    enf_url: str, enf_env: dict[str, str], outbox: Any
) -> None:
    ready = [_ready_upload(enf_url, enf_env, outbox, f"+642100000{i:02d}") for i in range(UPLOADS)]

    def upload(index: int) -> int:
        case = ready[index]
        response = requests.post(
            f"{enf_url}/exposures",
            json={
                "token": case["token"],
                "exposures": case["keys"],
                "platform": "test",
                "deviceVerificationPayload": "ok",
            },
            headers=case["bearer"],
            timeout=30,
        )
        return response.status_code

    statuses = _all_at_once(UPLOADS, upload)
    assert statuses == [204] * UPLOADS
    sent = {bytes(__import__("base64").b64decode(k["keyData"])) for c in ready for k in c["keys"]}
    with psycopg2.connect(enf_env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT key_data FROM exposures")
        stored = {bytes(row[0]) for row in cur.fetchall()}
        cur.execute("SELECT count(*) FROM upload_tokens WHERE claimed_at IS NULL")
        unclaimed = cur.fetchone()[0]
    # Keys from before the onset are dropped by rule; every other key of every upload is in.
    kept = {k for k in sent if k in stored}
    assert len(stored - sent) == 0
    assert len(kept) == len(stored) >= UPLOADS
    assert unclaimed == 0
    # The server still answers afterwards: nothing stayed wedged.
    assert requests.get(f"{enf_url}/health", timeout=10).status_code == 200


def test_mixed_concurrent_requests_never_see_each_others_transactions(
    enf_url: str, enf_env: dict[str, str], outbox: Any
) -> None:
    """Failing requests (rolled back) interleaved with succeeding ones (committed): each
    success is stored and no failure leaves a trace, as each had its own connection."""
    ready = [_ready_upload(enf_url, enf_env, outbox, f"+642100001{i:02d}") for i in range(10)]

    def mixed(index: int) -> int:
        case = ready[index // 2]
        if index % 2:  # a refused upload on the same token: validated, then refused
            body = {"token": case["token"], "exposures": [{"keyData": "x"}]}
        else:
            body = {"token": case["token"], "exposures": case["keys"]}
        body |= {"platform": "test", "deviceVerificationPayload": "ok"}
        return requests.post(
            f"{enf_url}/exposures", json=body, headers=case["bearer"], timeout=30
        ).status_code

    statuses = _all_at_once(20, mixed)
    assert statuses == [204, 400] * 10
    with psycopg2.connect(enf_env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM upload_tokens WHERE claimed_at IS NOT NULL")
        assert cur.fetchone()[0] == 10


def test_a_burst_of_sixty_connections_is_accepted_without_resets(enf_url: str) -> None:
    host, port = enf_url.removeprefix("http://").split(":")

    def connect(_: int) -> str:
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return conn.recv(12).decode()

    answers = _all_at_once(60, connect)
    assert answers == ["HTTP/1.1 200"] * 60


def _listen_backlog(port: int) -> int:
    """The backlog of the socket listening on ``port`` (``ss`` shows it as Send-Q)."""
    listing = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(listing[2])


def test_the_local_servers_listen_with_a_realistic_backlog(enf_url: str, outbox: Any) -> None:
    """socketserver's default of 5 resets a burst of 20+ clients; the API and the partner
    stand-ins accept 128 pending connections, as moto's werkzeug server does."""
    api_port = int(enf_url.rsplit(":", 1)[1])
    partners_port = int(outbox.url.rsplit(":", 1)[1])
    assert _listen_backlog(api_port) >= 128
    assert _listen_backlog(partners_port) >= 128


def test_fifty_concurrent_verifies_of_one_code_give_one_claim_and_its_repeats_one_token(
    enf_url: str, enf_env: dict[str, str], outbox: Any
) -> None:
    """Issue 19: a code is still claimed once among registrations racing for it, and the
    claimant's own concurrent repeats (a retry racing a lost answer) all get its token."""
    phones = [_registered(enf_url) for _ in range(50)]
    sent = requests.post(
        f"{enf_url}/ncts/verification-codes",
        json={"phone": "+64210000999", "symptomOnset": datetime.now(UTC).date().isoformat()},
        headers={"x-api-key": secret(enf_env, "NCTS_API_KEY_SECRET_ID")},
        timeout=10,
    )
    assert sent.status_code == 201, sent.text
    match = re.search(
        r"\b(\d{6})\b", [m for m in outbox.outbox() if m["channel"] == "sms"][-1]["body"]
    )
    assert match
    body = {"hash": app_hash(match.group(1))}

    def verify(headers: dict[str, str]) -> tuple[int, str | None]:
        response = requests.post(
            f"{enf_url}/exposures/verify", json=body, headers=headers, timeout=30
        )
        return response.status_code, response.json().get("token")

    answers = _all_at_once(50, lambda i: verify(phones[i]))
    winners = [i for i, (status, _) in enumerate(answers) if status == 200]
    assert len(winners) == 1 and sorted(s for s, _ in answers) == [200] + [403] * 49
    token = answers[winners[0]][1]
    repeats = _all_at_once(20, lambda _: verify(phones[winners[0]]))
    assert repeats == [(200, token)] * 20
    with psycopg2.connect(enf_env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM upload_tokens")
        assert cur.fetchone()[0] == 1
