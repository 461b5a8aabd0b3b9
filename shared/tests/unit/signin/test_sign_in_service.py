"""Sign-in use cases with in-memory twins of the stores and a fake Cognito."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from covidtracer.errors import (
    InvalidAuthCode,
    InvalidAuthSession,
    MfaEnabled,
    TooManyRequests,
    ValidationError,
)
from covidtracer.ratelimit.repository import MemoryCounters
from covidtracer.signin import service
from covidtracer.signin.cognito import CognitoUser, Retry, Tokens
from covidtracer.signin.repository import MemorySignInRecords
from covidtracer.signin.service import Confirmed, Initiated, SignInDeps
from covidtracer.signin.settings import SignInSettings

CONFIG = SignInSettings(
    cognito_gateway="aws",
    verify_tokens_in_app=False,
    session_validity_seconds=300,
    limit_per_email=5,
    limit_per_ip=30,
    limit_window_seconds=900,
    initiate_min_duration_ms=600,
)
CLIENT = "ios-client"


class FakeCognito:
    """Cognito as seen through the gateway: one code per session, 3 answers."""

    def __init__(self) -> None:
        self.users: dict[str, CognitoUser] = {}
        self.sessions: dict[str, tuple[str, int]] = {}  # session -> (code, wrong answers)
        self.code = "111111"
        self.created = 0
        self.mfa = False

    def find_or_create_user(self, email: str) -> CognitoUser:
        if email not in self.users:
            self.created += 1
            self.users[email] = CognitoUser(
                f"user-{len(self.users)}", f"sub-{len(self.users)}", self.mfa
            )
        return self.users[email]

    def start_sign_in(self, user: CognitoUser, client_id: str) -> str:
        session = f"s{len(self.sessions)}"
        self.sessions[session] = (self.code, 0)
        return session

    def answer(self, user_id: str, client_id: str, session: str, code: str) -> Tokens | Retry:
        if session not in self.sessions:
            raise InvalidAuthSession
        expected, wrong = self.sessions.pop(session)
        if code == expected:
            return Tokens(f"token-for-{user_id}")
        if wrong + 1 >= 3:
            raise InvalidAuthSession
        new = f"{session}'"
        self.sessions[new] = (expected, wrong + 1)
        return Retry(new)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


class SignIn:
    """The use cases bound to their deps and the clock, as the details app calls them."""

    def __init__(self, deps: SignInDeps, clock: Clock) -> None:
        self.deps = deps
        self.clock = clock

    def initiate(self, body: Mapping[str, Any], source_ip: str) -> Initiated:
        return service.initiate(self.deps, body, self.clock.datetime(), source_ip=source_ip)

    def confirm(self, body: Mapping[str, Any]) -> Confirmed:
        return service.confirm(self.deps, body, self.clock.datetime())


@pytest.fixture
def cognito() -> FakeCognito:
    return FakeCognito()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def records() -> MemorySignInRecords:
    return MemorySignInRecords()


@pytest.fixture
def sign_in(cognito: FakeCognito, clock: Clock, records: MemorySignInRecords) -> SignIn:
    ids = iter(f"verification-{n}" for n in range(100))
    deps = SignInDeps(
        gateway=cognito,
        records=records,
        counters=MemoryCounters(),
        config=CONFIG,
        client_ids=frozenset({CLIENT, "web-client"}),
        new_verification_id=lambda: next(ids),
        sleep=clock.sleep,
        monotonic=lambda: clock.now,
    )
    return SignIn(deps, clock)


def confirm(sign_in: SignIn, code: str, verification_id: str, email: str = "a@b.nz") -> str:
    body = {"clientId": CLIENT, "email": email, "code": code, "verificationId": verification_id}
    return sign_in.confirm(body).access_token


def test_initiate_then_confirm(sign_in: SignIn, cognito: FakeCognito) -> None:
    started = sign_in.initiate({"clientId": CLIENT, "email": "A@B.nz"}, "203.0.113.9")
    assert started.body() == {"verificationId": "verification-0", "userId": "sub-0"}
    confirmed = sign_in.confirm(
        {
            "clientId": CLIENT,
            "email": "a@b.nz",
            "code": "111111",
            "verificationId": "verification-0",
        }
    )
    assert confirmed.body() == {"accessToken": "token-for-sub-0", "userId": "sub-0"}


def test_initiate_answers_no_sooner_than_the_floor(sign_in: SignIn, clock: Clock) -> None:
    sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "ip")
    assert clock.slept == [pytest.approx(0.6)]


def test_the_floor_is_not_added_to_a_slow_initiate(
    sign_in: SignIn, cognito: FakeCognito, clock: Clock
) -> None:
    start = cognito.start_sign_in

    def slow_start(user: CognitoUser, client_id: str) -> str:
        clock.now += 2
        return start(user, client_id)

    cognito.start_sign_in = slow_start  # type: ignore[method-assign]
    slow = SignIn(replace(sign_in.deps, client_ids=frozenset({CLIENT})), clock)
    slow.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "ip")
    assert clock.slept == []


def test_a_wrong_code_stores_cognitos_next_session(
    sign_in: SignIn, records: MemorySignInRecords
) -> None:
    sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "ip")
    with pytest.raises(InvalidAuthCode):
        confirm(sign_in, "222222", "verification-0")
    assert records.items["verification-0"].session == "s0'"
    assert confirm(sign_in, "111111", "verification-0") == "token-for-sub-0"
    assert "verification-0" not in records.items, "a record signs in once"


def test_three_wrong_answers_end_the_session_and_delete_the_record(
    sign_in: SignIn, records: MemorySignInRecords
) -> None:
    sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "ip")
    for error in (InvalidAuthCode, InvalidAuthCode, InvalidAuthSession):
        with pytest.raises(error):
            confirm(sign_in, "222222", "verification-0")
    assert records.items == {}
    with pytest.raises(InvalidAuthSession):
        confirm(sign_in, "111111", "verification-0")


def test_an_expired_record_is_an_invalid_session(sign_in: SignIn, clock: Clock) -> None:
    sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "ip")
    clock.now += 300
    with pytest.raises(InvalidAuthSession):
        confirm(sign_in, "111111", "verification-0")


def test_a_resend_supersedes_the_earlier_sign_in(sign_in: SignIn) -> None:
    sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "ip")
    sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "ip")
    with pytest.raises(InvalidAuthSession):
        confirm(sign_in, "111111", "verification-0")
    assert confirm(sign_in, "111111", "verification-1") == "token-for-sub-0"


def test_a_concurrent_confirm_that_moved_the_session_wins(
    sign_in: SignIn, records: MemorySignInRecords, cognito: FakeCognito
) -> None:
    sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "ip")
    record = records.items["verification-0"]
    answer = cognito.answer

    def racing_answer(user_id: str, client_id: str, session: str, code: str) -> Tokens | Retry:
        records.replace_session(record, "moved-by-another-request")
        return answer(user_id, client_id, session, code)

    cognito.answer = racing_answer  # type: ignore[method-assign]
    with pytest.raises(InvalidAuthSession):
        confirm(sign_in, "222222", "verification-0")


def test_the_sixth_initiate_for_an_email_is_throttled_until_the_window_ends(
    sign_in: SignIn, clock: Clock
) -> None:
    clock.now = 1_700_000_100.0  # 100 s into a 15-minute window
    for _ in range(5):
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, f"ip-{clock.now}")
    with pytest.raises(TooManyRequests) as caught:
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "another-ip")
    assert 0 < caught.value.retry_after_seconds <= 900
    assert caught.value.headers() == {"Retry-After": str(caught.value.retry_after_seconds)}


def test_an_mfa_account_gets_its_user_id_and_no_code(sign_in: SignIn, cognito: FakeCognito) -> None:
    cognito.mfa = True
    with pytest.raises(MfaEnabled) as caught:
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "ip")
    assert caught.value.body()["userId"] == "sub-0"
    assert cognito.sessions == {}


def test_bad_requests_reach_neither_cognito_nor_the_throttle(
    sign_in: SignIn, cognito: FakeCognito
) -> None:
    for _ in range(40):
        with pytest.raises(ValidationError):
            sign_in.initiate({"clientId": "unknown", "email": "a@b.nz"}, "ip")
    assert cognito.created == 0
    sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "ip")
