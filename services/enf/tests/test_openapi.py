"""openapi.yaml describes exactly the ENF API's routes, and schema-based fuzzing of every
route over real HTTP (``chalice local``, as the local stack runs it) finds no 5xx."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml
from conftest import secret

from tracerstack.fuzzing import attack, fuzz

SERVICE = Path(__file__).resolve().parents[1]
OPENAPI = SERVICE / "openapi.yaml"
METHODS = ("get", "put", "post", "patch", "delete")
# Generated requests per operation and mode (valid, invalid): enough for every route to see
# well over 300 requests in all (asserted); FUZZ_EXAMPLES raises it for a deeper run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


def documented_routes() -> set[tuple[str, str]]:
    spec = yaml.safe_load(OPENAPI.read_text())
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    }


def test_every_route_of_the_app_is_documented_and_every_documented_route_exists() -> None:
    from app import app

    routes = {(method, path) for path, entries in app.routes.items() for method in entries}
    assert routes == documented_routes()


def _registered_phone(enf_url: str, env: dict[str, str]) -> Callable[[str, str], dict[str, str]]:
    """Register a phone on the served API; the credentials each route gets from the fuzzer."""
    nonce = requests.post(f"{enf_url}/register", timeout=10).json()["nonce"]
    tokens = requests.put(
        f"{enf_url}/register",
        json={"nonce": nonce, "platform": "test", "deviceVerificationPayload": "ok"},
        timeout=10,
    ).json()
    ncts = {"x-api-key": secret(env, "NCTS_API_KEY_SECRET_ID")}
    device = {"x-api-key": json.loads(secret(env, "ENF_APPS_SECRET_ID"))["apiKey"]}

    def headers_for(method: str, path: str) -> dict[str, str]:
        if path.startswith("/ncts/"):
            return ncts
        if path.startswith("/api/"):
            return device  # Google's verification API: the device API key
        if path == "/refresh":
            return {"Authorization": f"Bearer {tokens['refreshToken']}"}
        if (method, path) == ("DELETE", "/register"):
            return {}  # deleting the fuzzer's own registration would end the run early
        return {"Authorization": f"Bearer {tokens['token']}"}

    return headers_for


def test_fuzzing_every_route_finds_no_server_error(
    enf_url: str, enf_env: dict[str, str], outbox: Any
) -> None:
    headers_for = _registered_phone(enf_url, enf_env)

    statuses, failures = fuzz(str(OPENAPI), enf_url, headers_for, examples=EXAMPLES)
    print(json.dumps({"enf_fuzzed_requests": len(statuses), "enf_5xx": len(failures),
                      "statuses": dict(sorted(Counter(statuses).items()))}))  # fmt: skip
    assert len(statuses) > 300
    assert failures == []


def test_hostile_values_in_every_field_of_every_route_find_no_server_error(
    enf_url: str, enf_env: dict[str, str], outbox: Any
) -> None:
    """Mutational fuzzing from valid requests (tracerstack.fuzzing.attack): the issue's
    hostile inputs (deep nesting, lone surrogates, look-alike digits, unhashable types,
    control characters, wrong methods) in every field, query and method of the API."""
    headers_for = _registered_phone(enf_url, enf_env)
    key = {"keyData": "AAAAAAAAAAAAAAAAAAAAAA==", "rollingStartNumber": 2_700_000,
           "rollingPeriod": 144, "transmissionRiskLevel": 0}  # fmt: skip
    routes: dict[tuple[str, str], dict[str, Any]] = {
        ("PUT", "/register"): {"nonce": "0" * 64, "platform": "test",
                               "deviceVerificationPayload": "ok"},
        ("POST", "/ncts/verification-codes"): {"phone": "+64 21 012 3456",
                                               "symptomOnset": "2021-10-04",
                                               "testType": "confirmed"},
        ("POST", "/exposures/verify"): {"hash": "0" * 256},
        ("POST", "/exposures"): {"token": "00000000-0000-4000-8000-000000000000",
                                 "platform": "test", "deviceVerificationPayload": "ok",
                                 "exposures": [key]},
        ("POST", "/metrics"): {"os": "ios", "event": "CONTACT_NOTIFICATION", "version": "1"},
        ("POST", "/callback"): {"phone": "+64210123456", "firstName": "Aroha",
                                "lastName": "Smith", "contactNotes": "after 5"},
        ("GET", "/exposures"): {"query": {"since": 0, "limit": 10}},
        ("GET", "/settings/exposures"): {"query": {"os": "ios", "version": "1"}},
        ("GET", "/settings/notification"): {},
        ("GET", "/data/exposures/1-2-00001.zip"): {},
        ("POST", "/refresh"): {},
        ("DELETE", "/register"): {},
        ("POST", "/api/verify"): {"code": "123456", "accept": ["confirmed"], "padding": "AA=="},
        ("POST", "/api/certificate"): {"token": "a.b.c", "ekeyhmac": "A" * 43 + "=",
                                       "padding": "AA=="},
        ("POST", "/v1/publish"): {"temporaryExposureKeys": [{"key": "AAAAAAAAAAAAAAAAAAAAAA==",
                                                             "rollingStartNumber": 2_700_000,
                                                             "rollingPeriod": 144,
                                                             "transmissionRisk": 0}],
                                  "healthAuthorityID": "nz.govt.health.covidtracer",
                                  "verificationPayload": "a.b.c", "hmacKey": "AA==",
                                  "symptomOnsetInterval": 2_700_000, "traveler": False,
                                  "revisionToken": "", "padding": "AA=="},
    }  # fmt: skip

    statuses, failures = attack(enf_url, routes, headers_for)
    print(json.dumps({"enf_hostile_requests": len(statuses), "enf_5xx": len(failures),
                      "statuses": dict(sorted(Counter(statuses).items()))}))  # fmt: skip
    assert failures == []
    assert len(statuses) > 600
