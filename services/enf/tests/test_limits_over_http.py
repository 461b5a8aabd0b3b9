"""Issue 19's journeys over real HTTP: the ENF API under ``chalice local`` as the local stack
runs it (each request's real peer address is its source), callers on several loopback
addresses. An attacker spends every allowance it can reach from eight addresses; people
with real codes still verify them on the first try, from a ninth address and from the
attacker's own.

The limits are lowered so that "everything" is a few hundred requests; the rules are the
production ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import app_hash, secret

from covidtracer.enfkeys.settings import DEFAULT_METRICS_INTERVALS
from tracerstack.pytest_plugin import Answer, http, serve_api
from tracerstack.samples import daily_keys

LIMITS = {
    "ENF_VERIFY_FAILURES_PER_IP": "2",
    "ENF_VERIFY_FAILURES_GLOBAL": "8",
    "ENF_VERIFY_DAILY_FAILURES": "3",
    "ENF_VERIFY_GUARDED_FAILURES": "1",
    "ENF_VERIFY_MIN_INTERVAL_SECONDS": "0",
    "ENF_REGISTER_PER_IP": "3",
    "ENF_REGISTER_PER_IP_GUARDED": "3",
    "ENF_CALLBACK_PER_IP": "1",
    "ENF_METRICS_PER_IP": "2",
}
ATTACKERS = [f"127.0.0.{n}" for n in range(11, 19)]  # eight addresses
NINTH = "127.0.0.19"
ENOUGH = 30  # no allowance here needs more tries than this to be spent


class Phone:
    """A phone (or a guesser's registration) talking to the API from ``address``."""

    def __init__(self, url: str, address: str, bearer: str) -> None:
        self.url, self.address, self.bearer = url, address, bearer

    def send(self, method: str, path: str, body: Any = None) -> Answer:
        headers = {"Authorization": f"Bearer {self.bearer}"}
        return http(method, f"{self.url}{path}", body, headers, source_address=self.address)

    def verify(self, code: str) -> Answer:
        return self.send("POST", "/exposures/verify", {"hash": app_hash(code)})


def register(url: str, address: str) -> Phone | int:
    """A registration completed from ``address``, or the status that refused it."""
    nonce = http("POST", f"{url}/register", {}, source_address=address)
    assert nonce.status == 200, nonce.body
    body = {"nonce": nonce.json()["nonce"], "platform": "test", "deviceVerificationPayload": "x"}
    answer = http("PUT", f"{url}/register", body, source_address=address)
    return Phone(url, address, answer.json()["token"]) if answer.status == 200 else answer.status


def code_for_a_case(url: str, env: dict[str, str], outbox: Any, phone: str) -> str:
    """NCTS asks for an upload code for a case; the code as the SMS carries it."""
    onset = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    sent = http("POST", f"{url}/ncts/verification-codes", {"phone": phone, "symptomOnset": onset},
                {"x-api-key": secret(env, "NCTS_API_KEY_SECRET_ID")})  # fmt: skip
    assert sent.status == 201, sent.body
    sms = [m for m in outbox.outbox() if m["channel"] == "sms" and m["to"] == phone][-1]
    match = re.search(r"\b(\d{6})\b", sms["body"])
    assert match
    return match.group(1)


def spend_everything(url: str, address: str, first_guess: int) -> dict[str, set[int]]:
    """What a guesser does from ``address`` until every allowance it can reach refuses it:
    registrations, wrong codes with each until refused, a call-back with each, every metric
    event with each. The statuses seen, by route."""
    seen: dict[str, set[int]] = {"register": set(), "verify": set(), "callback": set(),
                                 "metrics": set()}  # fmt: skip
    guess = first_guess
    for _ in range(ENOUGH):
        phone = register(url, address)
        if not isinstance(phone, Phone):
            seen["register"].add(phone)
            break
        seen["register"].add(200)
        for _ in range(ENOUGH):
            guess += 1
            status = phone.verify(f"{guess % 1_000_000:06d}").status
            seen["verify"].add(status)
            if status == 429:
                break
        if 429 not in seen["callback"]:
            seen["callback"].add(phone.send("POST", "/callback", {"phone": "+6421000001"}).status)
        for event in DEFAULT_METRICS_INTERVALS:
            if 429 in seen["metrics"]:
                break
            metric = {"os": "android", "event": event, "version": "8.0.0"}
            seen["metrics"].add(phone.send("POST", "/metrics", metric).status)
    return seen


@pytest.fixture
def url(enf_env: dict[str, str]) -> Iterator[str]:
    with serve_api("enf", {**enf_env, **LIMITS}) as served:
        yield served


def test_an_attacker_spends_everything_from_eight_addresses_and_people_still_verify_at_once(
    url: str, enf_env: dict[str, str], outbox: Any
) -> None:
    # Someone installed the app long ago behind what will be one of the attacker's addresses.
    neighbour = register(url, ATTACKERS[1])
    assert isinstance(neighbour, Phone)

    # The eight addresses at once, as a distributed guesser would.
    with ThreadPoolExecutor(len(ATTACKERS)) as pool:
        spending = [pool.submit(spend_everything, url, address, index * 1000)
                    for index, address in enumerate(ATTACKERS)]  # fmt: skip
    for address, spent in zip(ATTACKERS, (f.result() for f in spending), strict=True):
        # Every allowance the address can reach refused it in the end (and nothing failed).
        assert spent == {
            "register": {200, 429}, "verify": {403, 429}, "callback": {204, 429},
            "metrics": {204, 429},
        }, (address, spent)  # fmt: skip

    # A case at a ninth address installs the app now and verifies on the first try.
    case = register(url, NINTH)
    assert isinstance(case, Phone)
    verified = case.verify(code_for_a_case(url, enf_env, outbox, "+64210000091"))
    assert verified.status == 200, verified.body
    assert case.send("POST", "/exposures", {
        "token": verified.json()["token"], "exposures": daily_keys(3), "platform": "test",
        "deviceVerificationPayload": "x",
    }).status == 204  # fmt: skip
    assert case.send("POST", "/callback", {"phone": "+64210000091"}).status == 204

    # The neighbour, at the attacker's own address, too; and when that answer is lost,
    # verifying again gets the same upload token.
    code = code_for_a_case(url, enf_env, outbox, "+64210000092")
    verified = neighbour.verify(code)
    assert verified.status == 200, verified.body
    assert neighbour.verify(code).json() == verified.json()
