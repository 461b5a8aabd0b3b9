"""Pure sign-in rules: email and request validation, codes, DefineAuthChallenge's table."""

from __future__ import annotations

import pytest

from covidtracer.errors import ValidationError
from covidtracer.signin import model
from covidtracer.signin.model import Challenge

CLIENTS = {"ios-client", "android-client", "web-client"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user@example.com", "user@example.com"),
        ("  User.Name+tag@Example.CO.NZ \n", "user.name+tag@example.co.nz"),
        ("o'brien@example.nz", "o'brien@example.nz"),
        ("", None),
        ("user", None),
        ("user@example", None),
        ("user@@example.com", None),
        ("us er@example.com", None),
        (".user@example.com", None),
        ("user@-example.com", None),
        ("user@example.com.", None),
        (f"{'a' * 65}@example.com", None),
        (f"a@{'b' * 60}.{'c' * 60}.{'d' * 60}.{'e' * 60}.{'f' * 10}.nz", None),  # > 254
        (None, None),
        (42, None),
    ],
)
def test_emails_are_trimmed_lower_cased_and_validated(raw: object, expected: str | None) -> None:
    assert model.normalise_email(raw) == expected


def test_initiate_reports_every_bad_field_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        model.parse_initiate({"clientId": "elsewhere", "email": "nope"}, CLIENTS)
    assert set(caught.value.errors) == {"ClientId", "Email"}
    assert "nope" not in str(caught.value.body())  # no input echoed back


def test_initiate_accepts_a_known_client_and_normalises_the_email() -> None:
    request = model.parse_initiate({"clientId": "web-client", "email": " A@B.NZ "}, CLIENTS)
    assert request == model.InitiateRequest("web-client", "a@b.nz")


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("000000", True),
        ("123456", True),
        ("12345", False),
        ("1234567", False),
        ("12345a", False),
        ("١٢٣٤٥٦", False),  # Arabic-Indic digits are digits to \d, not to Cognito
        ("123456\n", False),
        (123456, False),
    ],
)
def test_confirm_accepts_exactly_six_ascii_digits(code: object, valid: bool) -> None:
    body = {"clientId": "ios-client", "email": "a@b.nz", "code": code, "verificationId": "v"}
    if valid:
        assert model.parse_confirm(body, CLIENTS).code == code
    else:
        with pytest.raises(ValidationError) as caught:
            model.parse_confirm(body, CLIENTS)
        assert set(caught.value.errors) == {"Code"}


@pytest.mark.parametrize("verification_id", [None, "", "   ", "x" * 129, 7])
def test_confirm_needs_a_verification_id(verification_id: object) -> None:
    body = {"clientId": "ios-client", "email": "a@b.nz", "code": "123456"}
    with pytest.raises(ValidationError) as caught:
        model.parse_confirm({**body, "verificationId": verification_id}, CLIENTS)
    assert set(caught.value.errors) == {"VerificationId"}


@pytest.mark.parametrize(("drawn", "code"), [(0, "000000"), (42, "000042"), (999_999, "999999")])
def test_codes_are_six_digits_drawn_from_the_given_random_source(drawn: int, code: str) -> None:
    bounds = []

    def randbelow(n: int) -> int:
        bounds.append(n)
        return drawn

    assert model.new_code(randbelow) == code
    assert bounds == [1_000_000]


def test_codes_are_compared_exactly() -> None:
    assert model.codes_match("123456", "123456")
    assert not model.codes_match("123456", "123457")
    assert not model.codes_match("123456", "")
    assert not model.codes_match("123456", "1234567")


CODE = Challenge("CUSTOM_CHALLENGE", False, "CODE-123456")
RIGHT = Challenge("CUSTOM_CHALLENGE", True, "CODE-123456")


@pytest.mark.parametrize(
    ("session", "user_not_found", "expected"),
    [
        ([], False, (False, False, "CUSTOM_CHALLENGE")),
        ([CODE], False, (False, False, "CUSTOM_CHALLENGE")),
        ([CODE, CODE], False, (False, False, "CUSTOM_CHALLENGE")),
        ([CODE, CODE, CODE], False, (False, True, None)),
        ([RIGHT], False, (True, False, None)),
        ([CODE, CODE, RIGHT], False, (True, False, None)),
        ([Challenge("SRP_A", True)], False, (False, True, None)),
        ([Challenge("PASSWORD_VERIFIER", True), RIGHT], False, (False, True, None)),
        ([], True, (False, True, None)),
    ],
)
def test_define_auth_challenge_rule(
    session: list[Challenge], user_not_found: bool, expected: tuple[bool, bool, str | None]
) -> None:
    step = model.next_step(session, user_not_found)
    assert (step.issue_tokens, step.fail, step.challenge_name) == expected


def test_a_sessions_code_is_found_in_its_challenge_metadata() -> None:
    assert model.code_from_session([]) is None
    assert model.code_from_session([Challenge("CUSTOM_CHALLENGE", False, "")]) is None
    assert model.code_from_session([CODE]) == "123456"
    assert model.code_metadata("654321") == "CODE-654321"


def test_pseudonyms_are_stable_and_hide_the_address() -> None:
    assert model.pseudonym("a@b.nz") == model.pseudonym("a@b.nz") != model.pseudonym("c@b.nz")
    assert "a@b.nz" not in model.pseudonym("a@b.nz")


def test_the_email_has_the_code_in_text_and_html_and_no_other_six_digit_number() -> None:
    import re

    subject, text, html = model.code_email("012345")
    for body in (text, html):
        assert re.findall(r"\d{6}", body) == ["012345"]
    assert "<strong>012345</strong>" in html
    assert subject
