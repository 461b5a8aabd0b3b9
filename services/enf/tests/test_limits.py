"""Issue 19 against the ENF API, through the handler: a verify is safe to repeat, a right
code is never refused by anything another party can use up, and guessers stay bounded per
registration, per address and by the country-wide guard (docs/operations.md §10).

Addresses are played in-process (``from_address``); the same rules over real HTTP from
several loopback addresses are ``test_limits_over_http``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Phone, request_code, sql

from covidtracer import settings
from tracerstack.pytest_plugin import from_address
from tracerstack.samples import daily_keys


def _limit(monkeypatch: pytest.MonkeyPatch, **values: int) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, str(value))
    settings.reset()


def _token(response: Any) -> str:
    assert response.status_code == 200, response.body
    return str(json.loads(response.body)["token"])


def _wrong(index: int) -> str:
    """A code no test ever issues (request_code's codes are random; these collide with one
    in 10^6 draws per live code, so a test keeps few codes live)."""
    return f"{999_000 + index:06d}"


# ---------------------------------------------------------------------- 1: verify is safe to repeat


def test_a_repeat_verify_of_a_claimed_code_gets_the_same_upload_token(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = Phone(client)
    code = request_code(client, enf_env, outbox)
    first = _token(phone.verify(code))
    # The answer was lost; the app verifies again at once (no wait: only wrong codes wait).
    assert _token(phone.verify(code)) == first
    assert sql(enf_env, "SELECT count(*) FROM upload_tokens") == [(1,)]
    assert sql(enf_env, "SELECT verify_failures FROM registrations") == [(0,)]


def test_once_the_upload_is_stored_a_repeat_verify_and_the_same_upload_succeed(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = Phone(client)
    code = request_code(client, enf_env, outbox)
    keys = daily_keys(3)
    assert phone.upload(_token(phone.verify(code)), keys).status_code == 204
    stored = sql(enf_env, "SELECT count(*) FROM exposures")
    # The 204 was lost: the app taps Share again, verifying the code before uploading.
    again = _token(phone.verify(code))
    assert phone.upload(again, keys).status_code == 204
    assert sql(enf_env, "SELECT count(*) FROM exposures") == stored
    # The token was spent on those keys: other keys are not a retry of that upload.
    assert phone.upload(again, daily_keys(2)).status_code == 403


def test_another_registration_presenting_a_claimed_code_is_refused(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    code = request_code(client, enf_env, outbox)
    _token(Phone(client).verify(code))
    other = Phone(client).verify(code)
    assert other.status_code == 403
    assert json.loads(other.body)["type"] == "urn:errors:forbidden"
    assert sql(enf_env, "SELECT count(*) FROM upload_tokens") == [(1,)]


def test_a_claimed_codes_expired_upload_token_is_not_handed_out_again(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = Phone(client)
    code = request_code(client, enf_env, outbox)
    _token(phone.verify(code))
    sql(enf_env, "UPDATE upload_tokens SET expires_at = now() - interval '1 second'")
    assert phone.verify(code).status_code == 410


# ---------------------------------------------------------------------- 2: guessing


def test_a_right_code_is_never_refused_by_what_others_used_up(
    client: Any, enf_env: dict[str, str], outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Free registrations guess from three addresses until every allowance they can reach
    is spent; a person with a real code verifies it at once, from a fourth address and from
    the guessers' own."""
    _limit(monkeypatch, ENF_VERIFY_FAILURES_PER_IP=4, ENF_VERIFY_FAILURES_GLOBAL=6,
           ENF_VERIFY_DAILY_FAILURES=2)  # fmt: skip
    honest = [Phone(client), Phone(client)]
    guesses = 0
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        with from_address(client, address):
            for _ in range(4):
                phone = Phone(client)
                statuses = {phone.verify(_wrong(guesses + i)).status_code for i in range(3)}
                guesses += 3
                assert statuses <= {403, 429}
    for phone, address in zip(honest, ("10.0.0.4", "10.0.0.1"), strict=True):
        code = request_code(client, enf_env, outbox)
        with from_address(client, address):
            assert phone.verify(code).status_code == 200


def test_under_the_guard_a_registration_gets_three_wrong_codes_then_waits_for_its_end(
    client: Any, enf_env: dict[str, str], outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limit(monkeypatch, ENF_VERIFY_FAILURES_GLOBAL=2, ENF_VERIFY_MIN_INTERVAL_SECONDS=0)
    for index in range(2):  # the country-wide threshold: the guard goes up for a day
        assert Phone(client).verify(_wrong(index)).status_code == 403
    [(until,)] = sql(enf_env, "SELECT expires_at FROM rate_limits WHERE bucket = 'verify-guard'")
    assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)
    guesser = Phone(client)
    assert [guesser.verify(_wrong(10 + i)).status_code for i in range(3)] == [403] * 3
    code = request_code(client, enf_env, outbox)
    refused = guesser.verify(code)  # its own history: even a right code waits
    assert refused.status_code == 429
    assert 23 * 3600 < int(refused.headers["Retry-After"]) <= 24 * 3600
    # Anyone else's first attempts are untouched.
    assert Phone(client).verify(code).status_code == 200


def test_an_address_over_its_budget_guards_its_own_registrations_only(
    client: Any, enf_env: dict[str, str], outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limit(monkeypatch, ENF_VERIFY_FAILURES_PER_IP=3, ENF_VERIFY_MIN_INTERVAL_SECONDS=0)
    with from_address(client, "10.0.0.1"):
        guesser = Phone(client)
        statuses = [guesser.verify(_wrong(i)).status_code for i in range(5)]
    # Three wrong codes reach the address's budget; from then on its registrations are
    # guarded: this one has used its three, a newcomer still has its first three.
    assert statuses == [403, 403, 403, 429, 429]
    with from_address(client, "10.0.0.1"):
        newcomer = Phone(client)
        assert [newcomer.verify(_wrong(10 + i)).status_code for i in range(4)] == [403] * 3 + [429]
    with from_address(client, "10.0.0.2"):
        elsewhere = Phone(client)
        assert [elsewhere.verify(_wrong(20 + i)).status_code for i in range(2)] == [403] * 2
        # Away from a guarded address (and with no country-wide guard) its daily cap applies.
        assert guesser.verify(_wrong(30)).status_code == 403
    assert sql(enf_env, "SELECT count(*) FROM rate_limits WHERE bucket = 'verify-guard'") == [(0,)]


def test_only_a_wrong_code_makes_the_next_attempt_wait_a_second(
    client: Any, enf_env: dict[str, str], outbox: Any
) -> None:
    phone = Phone(client)
    code = request_code(client, enf_env, outbox)
    assert phone.verify(code).status_code == 200
    assert phone.verify(_wrong(0)).status_code == 403  # at once after a success
    too_soon = phone.verify(_wrong(1))
    assert too_soon.status_code == 429 and too_soon.headers["Retry-After"] == "1"


def test_each_wrong_code_is_reported_as_a_metric_for_the_alarm(
    client: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    assert Phone(client).verify(_wrong(0)).status_code == 403
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"_aws"' in line]
    [metric] = [line for line in lines if "EnfUploadCodeGuesses" in line]
    assert metric["EnfUploadCodeGuesses"] == 1 and metric["Stage"] == "local"
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "CovidTracer"


# ---------------------------------------------------------------------- registration


def _nonce(client: Any) -> str:
    response = client.http.post("/register", body=b"")
    assert response.status_code == 200, response.body
    return str(json.loads(response.body)["nonce"])


def _attest(client: Any, nonce: str, platform: str = "test") -> int:
    body = {"nonce": nonce, "platform": platform, "deviceVerificationPayload": "ok"}
    response = client.http.put(
        "/register", headers={"Content-Type": "application/json"}, body=json.dumps(body)
    )
    return int(response.status_code)


def test_nonces_and_failed_attestations_count_nothing_against_an_address(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,200 junk /register calls no longer stop installs from the address: only devices
    that attest count."""
    _limit(monkeypatch, ENF_REGISTER_PER_IP=2)
    nonces = [_nonce(client) for _ in range(6)]
    # Android is listed but not configured on the local stage: its verifier refuses.
    assert [_attest(client, nonce, "android") for nonce in nonces[:3]] == [403] * 3
    assert [_attest(client, nonce) for nonce in nonces[3:]] == [200, 200, 429]
    with from_address(client, "10.0.0.9"):
        assert _attest(client, nonces[5]) == 200


def test_under_the_guard_an_address_completes_fewer_registrations(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limit(monkeypatch, ENF_REGISTER_PER_IP=5, ENF_REGISTER_PER_IP_GUARDED=1,
           ENF_VERIFY_FAILURES_GLOBAL=1)  # fmt: skip
    with from_address(client, "10.0.0.1"):
        assert Phone(client).verify(_wrong(0)).status_code == 403  # the guard goes up
        nonces = [_nonce(client) for _ in range(2)]
        # The guesser's own registration was the address's first; the guard allows one.
        assert _attest(client, nonces[0]) == 429
    with from_address(client, "10.0.0.2"):
        assert _attest(client, nonces[0]) == 200
        assert _attest(client, nonces[1]) == 429


# ---------------------------------------------------------------------- callbacks, metrics


def test_callbacks_are_bounded_per_address_as_well_as_per_registration(
    client: Any, outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limit(monkeypatch, ENF_CALLBACK_PER_IP=2)
    body = {"phone": "+64 21 012 3456"}
    phones = [Phone(client) for _ in range(4)]
    with from_address(client, "10.0.0.1"):
        statuses = [p.request("POST", "/callback", body).status_code for p in phones[:3]]
    assert statuses == [204, 204, 429]
    with from_address(client, "10.0.0.2"):
        # The refused registration's hour was not spent by the 429.
        assert phones[2].request("POST", "/callback", body).status_code == 204
        assert phones[3].request("POST", "/callback", body).status_code == 204
    assert len([m for m in outbox.outbox() if m["channel"] == "ncts"]) == 4


def test_a_callback_ncts_could_not_take_is_refunded_per_address(
    client: Any, outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _limit(monkeypatch, ENF_CALLBACK_PER_IP=1)
    body = {"phone": "+64 21 012 3456"}
    outbox.outage("ncts")
    assert Phone(client).request("POST", "/callback", body).status_code == 503
    outbox.clear()
    assert Phone(client).request("POST", "/callback", body).status_code == 204


def test_metrics_are_bounded_per_address_as_well_as_per_registration(
    client: Any, enf_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _limit(monkeypatch, ENF_METRICS_PER_IP=2)
    event = {"os": "ios", "event": "DAILY_ACTIVE_TRACE", "version": "8.0.0"}
    phones = [Phone(client) for _ in range(3)]
    with from_address(client, "10.0.0.1"):
        assert [p.request("POST", "/metrics", event).status_code for p in phones] == [204, 204, 429]
    with from_address(client, "10.0.0.2"):
        assert phones[2].request("POST", "/metrics", event).status_code == 204
    assert sql(enf_env, "SELECT value FROM metrics") == [(3,)]
