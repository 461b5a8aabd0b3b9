"""Issue 19's journeys over real HTTP: the app API under ``chalice local`` as the local stack
runs it (each request's real peer address is its source), callers on several loopback
addresses. An attacker spends what it can from eight addresses against a person's email,
the consent codes and the callback queue; people at a ninth address still sign in, share
their diary and ask for a call; a sign-up surge behind one address all get their codes.

The limits are lowered so that "everything" is a few dozen requests; the rules are the
production ones. A stack of its own: the counters in all start from nothing.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import stack_of_its_own
from sign_in_flow import codes_sent_to, new_email
from test_exposure_events import event

from tracerstack.details_fakes import callback_request, diary_entry
from tracerstack.pytest_plugin import Answer, Partners, http, serve_api

aws_stack = stack_of_its_own()

LIMITS = {
    "SIGN_IN_MIN_DURATION_MS": "0",
    "SIGN_IN_LIMIT_PER_EMAIL": "2",
    "SIGN_IN_EMAIL_GUARD_AFTER": "2",
    "SIGN_IN_GUARDED_PER_DAY": "1",
    "DIARY_GUESSES_PER_IP": "2",
    "DIARY_GUESSES_PER_IP_GUARDED": "1",
    "DIARY_GUESSES_GLOBAL": "6",
    "CALLBACK_LIMIT_PER_IP": "2",
}
ATTACKERS = [f"127.0.0.{n}" for n in range(31, 39)]  # eight addresses
NINTH = "127.0.0.39"


@pytest.fixture(scope="module")
def url(stack_env: dict[str, str]) -> Iterator[str]:
    with serve_api("details", {**stack_env, **LIMITS}) as served:
        yield served


def at_each(work: Any) -> list[Any]:
    """``work(address)`` from each of the eight addresses in turn (moto, behind the app, is
    not safe for every concurrent call; the ENF journey runs its attackers at once)."""
    return [work(address) for address in ATTACKERS]


def until_refused(send: Any) -> list[int]:
    """Statuses of ``send()`` repeated until it answers 429 (at most 20 times)."""
    statuses: list[int] = []
    while len(statuses) < 20 and 429 not in statuses:
        statuses.append(send().status)
    return statuses


def test_someone_typing_your_email_from_eight_addresses_never_stops_your_sign_in(
    url: str, stack_env: dict[str, str], outbox: Partners
) -> None:
    client_id = json.loads(stack_env["APP_CLIENT_IDS"])["ios"]
    email = new_email()
    body = {"clientId": client_id, "email": email}

    def initiate(address: str) -> Answer:
        return http("POST", f"{url}/user/auth/initiate", body, source_address=address)

    # One address after another, so the count is exact: two from the first (its resend
    # allowance), then the email is guarded and each other address may start one a day.
    spent = [until_refused(lambda address=address: initiate(address)) for address in ATTACKERS]
    assert spent == [[200, 200, 429]] + [[200, 429]] * 7, spent
    mine = initiate(NINTH)
    assert mine.status == 200, mine.body
    code = codes_sent_to(outbox, email)[-1]
    confirm = {**body, "code": code, "verificationId": mine.json()["verificationId"]}
    signed_in = http("POST", f"{url}/user/auth/confirm", confirm, source_address=NINTH)
    assert signed_in.status == 200, signed_in.body
    assert signed_in.json()["accessToken"]


def test_a_sign_up_surge_behind_one_address_all_get_their_code(
    url: str, stack_env: dict[str, str], outbox: Partners
) -> None:
    client_id = json.loads(stack_env["APP_CLIENT_IDS"])["android"]
    emails = [new_email() for _ in range(31)]  # one more than the old per-address limit

    def initiate(email: str) -> int:
        body = {"clientId": client_id, "email": email}
        return http("POST", f"{url}/user/auth/initiate", body, source_address="127.0.0.40").status

    # One after another: moto's Cognito is not safe for concurrent sign-ups (real Cognito is).
    assert [initiate(email) for email in emails] == [200] * 31
    assert all(len(codes_sent_to(outbox, email)) == 1 for email in emails)


def _consent_code(partners: Partners) -> str:
    request = urllib.request.Request(f"{partners.url}/consent-codes", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["consentCode"])


def test_consent_code_guessing_from_eight_addresses_never_stops_a_diary_from_a_ninth(
    url: str, outbox: Partners
) -> None:
    entries = [diary_entry(datetime.now(UTC))]

    def guess(address: str) -> list[int]:
        guesses = iter(f"ZZ{address.rsplit('.', 1)[1]}{n:02d}" for n in range(100))
        return until_refused(lambda: http(
            "POST", f"{url}/v2/user/location-history",
            {"consentCode": next(guesses), "locations": entries}, source_address=address,
        ))  # fmt: skip

    spent = at_each(guess)
    assert all(statuses[-1] == 429 and set(statuses) == {400, 429} for statuses in spent), spent
    # Guessing in all tightened every address (6 refused codes): nobody was refused for it.
    genuine = {"consentCode": _consent_code(outbox), "locations": entries}
    shared = http("POST", f"{url}/v2/user/location-history", genuine, source_address=NINTH)
    assert shared.status == 204, shared.body
    # The one delay an attacker sharing your address can cause (docs/operations.md §10):
    # only NCTS can judge a consent code, so an address that keeps guessing is stopped.
    again = {"consentCode": _consent_code(outbox), "locations": entries}
    delayed = http("POST", f"{url}/v2/user/location-history", again, source_address=ATTACKERS[0])
    assert delayed.status == 429 and int(delayed.headers["Retry-After"]) <= 3600


def test_junk_and_pumped_callbacks_from_eight_addresses_never_stop_a_genuine_one(
    url: str, stack_env: dict[str, str], outbox: Partners, aws_stack: Any
) -> None:
    key = aws_stack.client("secretsmanager").get_secret_value(
        SecretId=stack_env["NCTS_API_KEY_SECRET_ID"]
    )["SecretString"]
    created = http("POST", f"{url}/ncts/exposure-events", event("match1"), {"x-api-key": key})
    assert created.status in (200, 201), created.body
    path = f"{url}/v2/exposure-event-matches"

    def attack(address: str) -> tuple[list[int], list[int]]:
        junk = [http("POST", path, callback_request(gln="9429300000000"),
                     source_address=address).status for _ in range(5)]  # fmt: skip
        phones = iter(f"+64 21 600 {address.rsplit('.', 1)[1]}{n:02d}" for n in range(100))
        pumped = until_refused(
            lambda: http("POST", path, callback_request(next(phones)), source_address=address)
        )
        return junk, pumped

    for junk, pumped in at_each(attack):
        assert junk == [400] * 5 and pumped == [204, 204, 429], (junk, pumped)
    assert (
        http("POST", path, callback_request("+64 21 600 9999"), source_address=NINTH).status == 204
    )
