"""The ENF API's pure rules, as tables: key validation, codes, rate limits, request shapes."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from covidtracer.enfkeys import model
from covidtracer.enfkeys.model import ExposureKey, KeyRules
from covidtracer.errors import ValidationError

NOW = datetime(2021, 10, 20, 9, 30, tzinfo=UTC)
TODAY = model.interval_number(NOW) // 144 * 144  # 00:00 UTC today, as an interval number
RULES = KeyRules(max_keys=14, max_keys_per_start_interval=3, max_age_days=15)
VECTOR_123456 = (
    "3c9909afec25354d551dae21590bb26e38d53f2173b8d3dc3eee4c047e7ab1c1eb8b85103e3be7ba613b31bb5c9c"
    "36214dc9f14a42fd7a2fdb84856bca5c44c2ba3253876aed6bc22d4a6ff53d8406c6ad864195ed144ab5c87621b6"
    "c233b548baeae6956df346ec8c17f5ea10f35ee3cbc514797ed7ddd3145464e2a0bab413"
)


def _b64(n: int = 16, fill: int = 1) -> str:
    return base64.b64encode(bytes([fill]) * n).decode()


def _raw_key(**overrides: Any) -> dict[str, Any]:
    key: dict[str, Any] = {
        "keyData": _b64(),
        "rollingStartNumber": TODAY - 144,
        "rollingPeriod": 144,
        "transmissionRiskLevel": 0,
    }
    key.update(overrides)
    return key


def _body(keys: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": "6b1bc7a4-7cfd-4f3b-8f0b-7c1a3d9c2e11",
        "exposures": keys,
        "platform": "test",
        "deviceVerificationPayload": "x",
    }
    body.update(overrides)
    return body


def _key(start: int, period: int = 144, fill: int = 1) -> ExposureKey:
    return ExposureKey(bytes([fill]) * 16, start, period, 0)


def test_the_app_hash_matches_the_shared_vector() -> None:
    assert model.app_code_hash("123456") == VECTOR_123456
    assert model.parse_app_hash({"hash": VECTOR_123456}) == VECTOR_123456


@pytest.mark.parametrize(
    "value", [None, "", VECTOR_123456.upper(), VECTOR_123456[:-1], VECTOR_123456 + "0", 7]
)
def test_a_malformed_app_hash_is_a_validation_error(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        model.parse_app_hash({"hash": value})
    assert "Hash" in caught.value.errors


@pytest.mark.parametrize(("drawn", "code"), [(0, "000000"), (42, "000042"), (999_999, "999999")])
def test_codes_are_six_digits_with_leading_zeros(drawn: int, code: str) -> None:
    assert model.new_code(lambda bound: drawn if bound == 10**6 else -1) == code


# ---------------------------------------------------------------------------- key shape


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"keyData": _b64(15)}, "Exposures[0].KeyData"),
        ({"keyData": _b64(17)}, "Exposures[0].KeyData"),
        ({"keyData": "not base64!"}, "Exposures[0].KeyData"),
        ({"keyData": None}, "Exposures[0].KeyData"),
        ({"rollingPeriod": 0}, "Exposures[0].RollingPeriod"),
        ({"rollingPeriod": 145}, "Exposures[0].RollingPeriod"),
        ({"rollingPeriod": "144"}, "Exposures[0].RollingPeriod"),
        ({"rollingStartNumber": -1}, "Exposures[0].RollingStartNumber"),
        ({"rollingStartNumber": True}, "Exposures[0].RollingStartNumber"),
        ({"transmissionRiskLevel": -1}, "Exposures[0].TransmissionRiskLevel"),
        ({"transmissionRiskLevel": 9}, "Exposures[0].TransmissionRiskLevel"),
        ({"transmissionRiskLevel": 1.5}, "Exposures[0].TransmissionRiskLevel"),
    ],
)
def test_each_bad_key_field_is_named(override: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.parse_upload(_body([_raw_key(**override)]), model.PLATFORMS, RULES)
    assert field in caught.value.errors


@pytest.mark.parametrize(
    ("override", "ok"),
    [
        ({"rollingPeriod": 1}, True),
        ({"rollingPeriod": 144}, True),
        ({"transmissionRiskLevel": 0}, True),
        ({"transmissionRiskLevel": 8}, True),
        ({"rollingStartNumber": float(TODAY - 144)}, True),
    ],
)
def test_boundary_values_of_a_key_are_accepted(override: dict[str, Any], ok: bool) -> None:
    upload = model.parse_upload(_body([_raw_key(**override)]), model.PLATFORMS, RULES)
    assert len(upload.keys) == 1


@pytest.mark.parametrize(
    ("count", "max_keys", "ok"),
    [(0, 14, False), (1, 14, True), (14, 14, True), (15, 14, False), (30, 30, True)],
)
def test_an_upload_carries_between_one_and_the_configured_number_of_keys(
    count: int, max_keys: int, ok: bool
) -> None:
    keys = [
        _raw_key(keyData=_b64(fill=i), rollingStartNumber=TODAY - 144 * i) for i in range(count)
    ]
    rules = replace(RULES, max_keys=max_keys)
    if ok:
        assert len(model.parse_upload(_body(keys), model.PLATFORMS, rules).keys) == count
    else:
        with pytest.raises(ValidationError) as caught:
            model.parse_upload(_body(keys), model.PLATFORMS, rules)
        assert "Exposures" in caught.value.errors


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"token": "not-a-uuid"}, "Token"),
        ({"token": None}, "Token"),
        ({"platform": "windows"}, "Platform"),
        ({"deviceVerificationPayload": None}, "DeviceVerificationPayload"),
        ({"exposures": "many"}, "Exposures"),
    ],
)
def test_the_upload_envelope_is_checked(override: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.parse_upload(_body([_raw_key()], **override), model.PLATFORMS, RULES)
    assert field in caught.value.errors


def test_a_platform_not_allowed_by_settings_is_refused() -> None:
    with pytest.raises(ValidationError, match="validation"):
        model.parse_upload(_body([_raw_key()]), ("ios", "android"), RULES)


# ------------------------------------------------------------------ key rules with the clock


@pytest.mark.parametrize(
    ("keys", "ok"),
    [
        ([_key(TODAY)], True),  # today's key, still rolling
        ([_key(model.interval_number(NOW))], True),  # starts in the current interval
        ([_key(model.interval_number(NOW) + 1, 1)], False),  # starts in the future
        ([_key(TODAY + 144)], False),  # tomorrow's key
        ([_key(TODAY - 144 * 14)], True),  # 14 days ago, ended 13 days ago
        ([_key(TODAY - 144 * 15)], True),  # ended 14 days ago: still within 15 days
        ([_key(TODAY - 144 * 16)], False),  # ended 15 days + 9.5 h ago
        ([_key(TODAY, 10), _key(TODAY, 20, 2), _key(TODAY, 144, 3)], True),  # 3 share a start
        ([_key(TODAY, 10, f) for f in range(4)], False),  # 4 share a start
        ([_key(TODAY - 144), _key(TODAY - 100, 10, 2)], False),  # overlap, different starts
        ([_key(TODAY - 144), _key(TODAY, 144, 2)], True),  # back to back
        ([_key(TODAY - 144, 10), _key(TODAY - 100, 10, 2)], True),  # gap between them
        ([_key(TODAY - 288, 144), _key(TODAY - 144, 10, 2), _key(TODAY - 200, 10, 3)], False),
    ],
)
def test_google_key_server_rules(keys: list[ExposureKey], ok: bool) -> None:
    if ok:
        model.validate_keys(keys, RULES, NOW)
    else:
        with pytest.raises(ValidationError):
            model.validate_keys(keys, RULES, NOW)


def test_the_per_interval_limit_and_the_age_come_from_the_rules() -> None:
    four = [_key(TODAY, 10, f) for f in range(4)]
    model.validate_keys(four, replace(RULES, max_keys_per_start_interval=4), NOW)
    old = [_key(TODAY - 144 * 16)]
    model.validate_keys(old, replace(RULES, max_age_days=17), NOW)


# ---------------------------------------------------------------------------- onset


# The shipped configuration scores days -5 .. +10 since onset as infectious.
INFECTIOUS = frozenset(range(-5, 11))


@pytest.mark.parametrize(
    ("start_days_ago", "onset_days_ago", "stored_days_since_onset"),
    [
        (3, 3, 0),  # the onset day's key
        (5, 3, -2),  # two days before onset: infectious, kept (it used to be dropped)
        (8, 3, -5),  # the first infectious day
        (9, 3, None),  # -6: scored as not infectious, dropped
        (0, 3, 3),  # today's key, three days after onset
        (0, 10, 10),  # the last infectious day
        (0, 11, None),  # +11: not infectious
    ],
)
def test_keys_are_kept_exactly_on_the_days_the_configuration_scores_as_infectious(
    start_days_ago: int, onset_days_ago: int, stored_days_since_onset: int | None
) -> None:
    onset = NOW.date() - timedelta(days=onset_days_ago)
    stored = model.keys_to_store(
        [_key(TODAY - 144 * start_days_ago)],
        symptom_onset=onset,
        report_type=model.CONFIRMED_TEST,
        infectious_days=INFECTIOUS,
    )
    if stored_days_since_onset is None:
        assert stored == []
    else:
        assert [k.days_since_onset for k in stored] == [stored_days_since_onset]
        assert stored[0].report_type == model.CONFIRMED_TEST


# ---------------------------------------------------------------------------- code requests


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"phone": "+64 21 012 3456", "symptomOnset": "2021-10-18"}, set()),
        ({"phone": "021 012 3456", "symptomOnset": "2021-10-18"}, {"Phone"}),
        ({"phone": "+64 21 012 3456", "symptomOnset": "2021-10-21"}, {"SymptomOnset"}),
        ({"phone": "+64 21 012 3456", "symptomOnset": "2021-09-01"}, {"SymptomOnset"}),
        ({"phone": "+64 21 012 3456", "symptomOnset": "2021-02-30"}, {"SymptomOnset"}),
        ({"phone": "+64 21 012 3456", "symptomOnset": "18/10/2021"}, {"SymptomOnset"}),
        (
            {"phone": "+64210123456", "symptomOnset": "2021-10-18", "testType": "rumour"},
            {"TestType"},
        ),
        ({}, {"Phone", "SymptomOnset"}),
    ],
)
def test_a_code_request_reports_every_bad_field(body: dict[str, Any], fields: set[str]) -> None:
    if not fields:
        request = model.parse_code_request(body, today=date(2021, 10, 20), max_onset_age_days=28)
        assert request.phone == "+64210123456"
        assert request.report_type == model.CONFIRMED_TEST
        return
    with pytest.raises(ValidationError) as caught:
        model.parse_code_request(body, today=date(2021, 10, 20), max_onset_age_days=28)
    assert set(caught.value.errors) == fields


def test_a_likely_case_uploads_clinical_diagnosis_keys() -> None:
    request = model.parse_code_request(
        {"phone": "+64210123456", "symptomOnset": "2021-10-18", "testType": "likely"},
        today=date(2021, 10, 20),
        max_onset_age_days=28,
    )
    assert request.report_type == model.CONFIRMED_CLINICAL_DIAGNOSIS


# ---------------------------------------------------------------------------- guessing limits


GUARD_ENDS = NOW + timedelta(hours=20)


@pytest.mark.parametrize(
    ("last_failure", "failure_day", "failures", "since_success", "guard", "retry_after"),
    [
        (None, None, 0, 0, None, None),
        (NOW - timedelta(seconds=1), None, 0, 0, None, None),
        (NOW - timedelta(milliseconds=400), None, 0, 0, None, 1),
        (NOW - timedelta(hours=1), NOW.date(), 9, 9, None, None),
        (NOW - timedelta(hours=1), NOW.date(), 10, 10, None, int(14.5 * 3600)),  # UTC midnight
        (NOW - timedelta(hours=1), NOW.date() - timedelta(days=1), 10, 10, None, None),  # new day
        # Under the guard: three wrong codes since the last right one, then the guard's end.
        (None, None, 0, 0, GUARD_ENDS, None),
        (NOW - timedelta(hours=1), NOW.date(), 2, 2, GUARD_ENDS, None),
        (NOW - timedelta(hours=1), NOW.date(), 3, 3, GUARD_ENDS, 20 * 3600),
        (NOW - timedelta(days=2), NOW.date() - timedelta(days=2), 3, 3, GUARD_ENDS, 20 * 3600),
        # Wrong codes before a right one are forgiven; the daily cap still counts them.
        (NOW - timedelta(hours=1), NOW.date(), 5, 0, GUARD_ENDS, None),
        (NOW - timedelta(hours=1), NOW.date(), 10, 0, GUARD_ENDS, int(14.5 * 3600)),
    ],
)
def test_a_registrations_own_wrong_codes_are_what_make_it_wait(
    last_failure: datetime | None,
    failure_day: date | None,
    failures: int,
    since_success: int,
    guard: datetime | None,
    retry_after: int | None,
) -> None:
    assert (
        model.verify_retry_after(
            last_failure_at=last_failure,
            failure_day=failure_day,
            failures=failures,
            failures_since_success=since_success,
            now=NOW,
            min_interval_seconds=1,
            daily_failures=10,
            guarded_failures=3,
            guarded_until=guard,
        )
        == retry_after
    )


# ---------------------------------------------------------------------------- other requests


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"nonce": "a" * 64, "platform": "test", "deviceVerificationPayload": "p"}, True),
        ({"nonce": "a" * 63, "platform": "test", "deviceVerificationPayload": "p"}, False),
        ({"nonce": "a" * 64, "platform": "ios", "deviceVerificationPayload": "p"}, False),
        ({"nonce": "a" * 64, "platform": "test", "deviceVerificationPayload": ""}, False),
    ],
)
def test_registration_requests(body: dict[str, Any], ok: bool) -> None:
    if ok:
        assert model.parse_registration(body, ("test",)).nonce == "a" * 64
    else:
        with pytest.raises(ValidationError):
            model.parse_registration(body, ("test",))


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"os": "ios", "event": "CONTACT_UPLOAD", "version": "1.2.3"}, True),
        ({"os": "android", "event": "CONTACT_UPLOAD"}, True),
        ({"os": "web", "event": "CONTACT_UPLOAD"}, False),
        ({"os": "ios", "event": "SOMETHING_ELSE"}, False),
        ({"os": "ios", "event": "CONTACT_UPLOAD", "version": "x" * 33}, False),
    ],
)
def test_metric_events_must_be_configured(body: dict[str, Any], ok: bool) -> None:
    events = {"CONTACT_UPLOAD": 60}
    if ok:
        assert model.parse_metric(body, events).event == "CONTACT_UPLOAD"
    else:
        with pytest.raises(ValidationError):
            model.parse_metric(body, events)


def test_callback_requests_keep_optional_names_and_notes() -> None:
    callback = model.parse_callback({"phone": "+64 21 555 0000", "firstName": "Aroha"})
    assert (callback.phone, callback.first_name, callback.last_name) == (
        "+64215550000",
        "Aroha",
        None,
    )
    with pytest.raises(ValidationError):
        model.parse_callback({"phone": "+64215550000", "contactNotes": "x" * 256})
