"""Sign-in use cases with in-memory twins of the stores and a fake Cognito."""

from __future__ import annotations

import json
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
    Unavailable,
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
    limit_window_seconds=900,
    email_guard_after=1,
    guarded_per_day=3,
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
    ids = iter(f"verification-{n}" for n in range(10_000))
    deps = SignInDeps(
        gateway=cognito,
        records=records,
        counters=MemoryCounters(),
        config=CONFIG,
        client_ids=frozenset({CLIENT, "web-client"}),
        stage="test",
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


def test_the_sixth_initiate_for_an_email_from_one_address_waits_until_the_window_ends(
    sign_in: SignIn, clock: Clock
) -> None:
    """CLIENTS.md: the app's own resends, from one phone, get 429 with Retry-After."""
    clock.now = 1_700_000_100.0  # 100 s into a 15-minute window
    for _ in range(5):
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "203.0.113.9")
    with pytest.raises(TooManyRequests) as caught:
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "203.0.113.9")
    assert 0 < caught.value.retry_after_seconds <= 900
    assert caught.value.headers() == {"Retry-After": str(caught.value.retry_after_seconds)}


def test_someone_typing_your_email_elsewhere_never_stops_your_sign_in(
    sign_in: SignIn, cognito: FakeCognito
) -> None:
    """Issue 19 changed this rule: five initiates for an email from anywhere used to refuse
    its owner for 15 minutes."""
    for _ in range(5):
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "198.51.100.1")
    with pytest.raises(TooManyRequests):
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "198.51.100.1")
    mine = sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "203.0.113.9")
    assert confirm(sign_in, cognito.code, mine.verification_id) == "token-for-sub-0"


def test_a_targeted_email_gets_a_few_sign_ins_a_day_from_each_address(
    sign_in: SignIn, cognito: FakeCognito, clock: Clock
) -> None:
    """Initiates for one email from other addresses mean someone is after it (guessing its
    codes, or bombing its inbox): each further address may start three sign-ins for it a
    day, the owner's own address included, so the owner still signs in."""
    for _ in range(5):
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "198.51.100.1")
    for attacker in range(2, 6):
        for _ in range(3):
            sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, f"198.51.100.{attacker}")
        with pytest.raises(TooManyRequests) as caught:
            sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, f"198.51.100.{attacker}")
        assert caught.value.retry_after_seconds > 900  # until the day's window ends
    clock.now += 900  # a new 15-minute window: the others' initiates are still this day's
    mine = sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "203.0.113.9")
    assert confirm(sign_in, cognito.code, mine.verification_id) == "token-for-sub-0"
    # An address that never targeted anyone else is untouched.
    sign_in.initiate({"clientId": CLIENT, "email": "c@d.nz"}, "198.51.100.2")


def test_thousands_of_people_behind_one_carrier_address_all_get_their_code(
    sign_in: SignIn, cognito: FakeCognito
) -> None:
    """A sign-up surge behind one carrier NAT address (CLIENTS.md): no per-address limit
    refuses it (the edge's rate rule bounds one address; see docs/operations.md §10)."""
    for person in range(3000):
        sign_in.initiate({"clientId": CLIENT, "email": f"p{person}@b.nz"}, "203.0.113.9")
    assert len(cognito.sessions) == 3000


def test_a_sign_in_whose_record_cannot_be_stored_emails_nothing_and_is_refunded(
    sign_in: SignIn, cognito: FakeCognito, records: MemorySignInRecords
) -> None:
    add = records.add

    def down(record: Any) -> None:
        raise Unavailable("dynamodb:sign_in_sessions")

    records.add = down  # type: ignore[method-assign]
    for _ in range(6):
        with pytest.raises(Unavailable):
            sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "203.0.113.9")
    assert cognito.sessions == {}, "no code is emailed for a sign-in nobody can confirm"
    records.add = add  # type: ignore[method-assign]
    for _ in range(5):  # the outage cost the person none of their five
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "203.0.113.9")


def test_a_sign_in_whose_session_cannot_be_stored_is_refunded(
    sign_in: SignIn, records: MemorySignInRecords
) -> None:
    def down(record: Any, session: str) -> None:
        raise Unavailable("dynamodb:sign_in_sessions")

    replace_session = records.replace_session
    records.replace_session = down  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "203.0.113.9")
    records.replace_session = replace_session  # type: ignore[method-assign]
    for _ in range(5):
        sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "203.0.113.9")
    with pytest.raises(InvalidAuthSession):  # the failed one's record leads nowhere
        confirm(sign_in, "111111", "verification-0")


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


def test_each_sign_in_started_is_counted_in_a_metric_an_alarm_watches(
    sign_in: SignIn, cognito: FakeCognito, capsys: pytest.CaptureFixture[str]
) -> None:
    sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "203.0.113.9")
    cognito.mfa = True
    with pytest.raises(MfaEnabled):  # no code is emailed, so nothing is counted
        sign_in.initiate({"clientId": CLIENT, "email": "mfa@b.nz"}, "203.0.113.9")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["SignInCodesSent"] for line in lines if "SignInCodesSent" in line] == [1]
    assert "a@b.nz" not in json.dumps(lines)


def test_an_mfa_account_is_told_so_every_time_and_nothing_is_counted(
    sign_in: SignIn, cognito: FakeCognito
) -> None:
    """No code is emailed to an account with an authenticator app, so its initiates count
    against no limit: the person keeps being told what to do, never "too many attempts"."""
    cognito.mfa = True
    for _ in range(7):
        with pytest.raises(MfaEnabled):
            sign_in.initiate({"clientId": CLIENT, "email": "a@b.nz"}, "203.0.113.9")
