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

import pytest

from tracerstack.pytest_plugin import free_port
from tracerstack.release import release_version

STACK_KEYS = {
    "details_api",
    "enf_api",
    "aws_endpoint",
    "exposure_events_url",
    "client_ids",
    "ncts_api_key",
    "ncts",
    "outbox",
    "export_public_key_pem",
    "buckets",
}


def _tracerstack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracerstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.load(response)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_server_url: str
) -> Iterator[tuple[dict[str, str], Path]]:
    local_dir = tmp_path_factory.mktemp("local")
    env = {
        **os.environ,
        "COVIDTRACER_LOCAL_DIR": str(local_dir),
        "DATABASE_URL": postgres_server_url,
        "AWS_PORT": str(free_port()),
        "PARTNERS_PORT": str(free_port()),
        "DETAILS_PORT": str(free_port()),
        "ENF_PORT": str(free_port()),
    }
    started = _tracerstack(env, "up")
    assert started.returncode == 0, started.stdout + started.stderr
    yield env, local_dir
    _tracerstack(env, "down")


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
    again = _tracerstack(stack[0], "up")
    assert again.returncode == 1
    assert "already running" in again.stdout


def test_an_unknown_job_is_refused_with_the_list_of_jobs(
    stack: tuple[dict[str, str], Path],
) -> None:
    result = _tracerstack(stack[0], "job", "nightly")
    assert result.returncode == 1
    assert "unknown job 'nightly'" in result.stdout and "enf-export" in result.stdout


def _post(url: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


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


def test_down_ends_every_process_it_started_and_only_those(
    stack: tuple[dict[str, str], Path],
) -> None:
    env, local_dir = stack
    run = json.loads((local_dir / "run.json").read_text())
    pids = [record["pid"] for record in run["processes"]]
    assert len(pids) == 6  # moto, partners, two APIs, scheduler, stream poller
    stopped = _tracerstack(env, "down")
    assert stopped.returncode == 0, stopped.stdout
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline")
        assert not cmdline.exists() or cmdline.read_bytes() == b""  # gone, or a reaped-later zombie
    assert not (local_dir / "run.json").exists()
