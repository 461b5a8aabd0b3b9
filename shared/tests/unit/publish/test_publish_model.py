"""The pure rules of /v1/publish: Google's tekmac test vectors, the validation table, report
types, revision transitions and the revision-token codec."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import pytest

from covidtracer.enfkeys.model import KeyRules
from covidtracer.publish import model, revision
from covidtracer.publish.model import PublishApiError, SentKey, StoredState, parse_publish

# vectors/README.md (Google's pkg/verification/utils_test.go): the device secret is the 16
# bytes 0x01..0x10.
SECRET = bytes(range(1, 17))
NOW = datetime(2021, 10, 15, 13, 30, tzinfo=UTC)
RULES = KeyRules(max_keys=30, max_keys_per_start_interval=3, max_age_days=15)
ONSET_RULES = model.OnsetRules(14, 28, 4)


def _sent(keys: list[dict[str, object]]) -> list[SentKey]:
    return list(parse_publish({"temporaryExposureKeys": keys}).keys)


def _vector_keys(risk_a: int, risk_b: int) -> list[SentKey]:
    return _sent(
        [
            {"key": "z2Cx9hdz2SlxZ8GEgqTYpA==", "rollingStartNumber": 1, "rollingPeriod": 144,
             "transmissionRisk": risk_a},
            {"key": "dPCphLzfG4uzXneNimkPRQ==", "rollingStartNumber": 144, "rollingPeriod": 144,
             "transmissionRisk": risk_b},
        ]
    )  # fmt: skip


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_googles_tekmac_vector_is_the_four_part_hmac() -> None:
    macs = model.tekmac_candidates(_vector_keys(3, 5), SECRET)
    assert [_b64(m) for m in macs] == ["2u1nHt5WWurJytFLF3xitNzM99oNrad2y4YGOL53AeY="]


def test_with_every_risk_zero_both_googles_four_and_three_part_forms_are_accepted() -> None:
    macs = [_b64(m) for m in model.tekmac_candidates(_vector_keys(0, 0), SECRET)]
    assert macs == [
        "mFNI9zhTA17n4ndd1Vu5tsn4XQX0gPrIKyjeh/9noUE=",
        "J9S7xVebH/66dm14wGsIcAnSUR3PHD4NtDQEOGZbDUo=",
    ]
    keys = _vector_keys(0, 0)
    for mac in macs:
        assert model.tekmac_matches(keys, SECRET, base64.b64decode(mac))
    assert not model.tekmac_matches(keys, bytes(16), base64.b64decode(macs[0]))
    # The three-part form holds only while every risk is zero.
    assert not model.tekmac_matches(_vector_keys(3, 5), SECRET, base64.b64decode(macs[1]))


def _key(days_back: int, *, period: int = 144, risk: int = 0, start: int | None = None) -> dict:
    today = int(NOW.timestamp()) // 600 // 144 * 144
    return {
        "key": _b64(os.urandom(16)),
        "rollingStartNumber": today - 144 * days_back if start is None else start,
        "rollingPeriod": period,
        "transmissionRisk": risk,
    }


def _transform(keys: list[dict], report_type: str = "confirmed", onset_days_back: int = 3):
    onset = int((NOW - timedelta(days=onset_days_back)).timestamp()) // 600
    return model.transform(_sent(keys), report_type, onset, RULES, ONSET_RULES, NOW)


def test_thirty_keys_are_accepted_and_thirty_one_refuse_the_publish() -> None:
    keys = [_key(day // 2, period=72, start=None) for day in range(30)]
    for index, key in enumerate(keys):
        key["rollingStartNumber"] += 72 * (index % 2)
    assert len(_transform(keys, onset_days_back=7).keys) == 30
    result = _transform([*keys, _key(16)], onset_days_back=7)
    assert result.keys == [] and "too many exposure keys" in result.errors[0]


def test_at_most_three_keys_may_share_a_start_interval() -> None:
    same = [_key(1, period=144) for _ in range(3)]
    assert len(_transform(same).keys) == 3
    result = _transform([*same, _key(1)])
    assert result.keys == [] and "share a start interval" in result.errors[0]


def test_overlapping_keys_refuse_the_publish() -> None:
    result = _transform([_key(1), _key(1, start=_key(1)["rollingStartNumber"] + 10)])
    assert result.keys == [] and "overlap" in result.errors[0]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ({"days_back": 16}, "expired more than 15 days ago"),
        ({"days_back": -1}, "starts in the future"),
        ({"days_back": 1, "period": 145}, "rolling period"),
        ({"days_back": 1, "risk": 9}, "transmission risk"),
    ],
)
def test_a_bad_key_is_dropped_and_the_rest_stored_as_a_partial_failure(key, reason) -> None:
    result = _transform([_key(2), _key(**key)], onset_days_back=2)
    assert len(result.keys) == 1
    assert (
        result.errors
        and result.errors[0].startswith("key 1 cannot be imported")
        and reason in result.errors[0]
    )


def test_a_key_that_is_not_sixteen_bytes_is_dropped() -> None:
    bad = {**_key(1), "key": _b64(os.urandom(15))}
    result = _transform([_key(2), bad])
    assert len(result.keys) == 1 and "16 bytes" in result.errors[0]


def test_a_key_more_than_fourteen_days_from_the_onset_is_dropped_with_a_warning() -> None:
    result = _transform([_key(1), _key(15)], onset_days_back=0)
    assert [k.days_since_onset for k in result.keys] == [-1]
    assert result.errors == []
    assert result.warnings == [
        "key 1 symptom onset is too large, 15 > 14 - saving without this key"
    ]


def test_todays_still_valid_key_is_accepted_for_the_export_to_embargo() -> None:
    assert len(_transform([_key(0)]).keys) == 1


@pytest.mark.parametrize(
    ("report_type", "sent", "stored"),
    [("confirmed", 0, 2), ("likely", 0, 4), ("user-report", 0, 0), ("confirmed", 7, 7)],
)
def test_transmission_risk_follows_the_report_type_unless_the_phone_sent_one(
    report_type: str, sent: int, stored: int
) -> None:
    result = _transform([_key(1, risk=sent)], report_type)
    assert result.keys[0].key.transmission_risk_level == stored


def test_the_onset_is_the_publishs_then_the_certificates_then_four_days_ago() -> None:
    now_interval = int(NOW.timestamp()) // 600
    published, certified = now_interval - 300, now_interval - 500
    assert model.onset_interval(published, certified, ONSET_RULES, NOW) == published
    assert model.onset_interval(0, certified, ONSET_RULES, NOW) == certified
    assert (
        model.onset_interval(now_interval + 5, None, ONSET_RULES, NOW)
        == int((NOW - timedelta(days=4)).timestamp()) // 600
    )
    too_old = now_interval - 29 * 144
    assert model.onset_interval(too_old, None, ONSET_RULES, NOW) != too_old


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"temporaryExposureKeys": {}}, "invalid value"),
        ({"healthAuthorityID": 5}, "invalid value"),
        ({"traveler": "yes"}, "invalid value"),
        ({"symptomOnsetInterval": 2**31}, "invalid value"),
        ({"temporaryExposureKeys": [{"key": "x", "extra": 1}]}, "unknown field"),
        ({"temporaryExposureKeys": [{"key": 5}]}, "invalid value"),
        ({"temporaryExposureKeys": [{"key": "x", "rollingPeriod": 1.5}]}, "invalid value"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_a_bad_request(body: dict, message: str) -> None:
    with pytest.raises(PublishApiError) as raised:
        parse_publish(body)
    assert (raised.value.status, raised.value.code, raised.value.message) == (
        400,
        "bad_request",
        message,
    )


def test_key_fields_match_case_insensitively_as_gos_decoder_does() -> None:
    (sent,) = parse_publish(
        {"temporaryExposureKeys": [{"KEY": _b64(bytes(16)), "rollingstartnumber": 5,
                                    "ROLLINGPERIOD": 144}]}
    ).keys  # fmt: skip
    assert sent.key is not None and sent.rolling_start_number == 5 and sent.transmission_risk == 0


# ---------------------------------------------------------------------------- revision


@pytest.mark.parametrize(
    ("previous", "new", "allowed"),
    [
        ("likely", "confirmed", True),
        ("likely", "negative", True),
        ("user-report", "confirmed", True),
        ("user-report", "likely", True),
        ("user-report", "negative", True),
        ("confirmed", "likely", False),
        ("confirmed", "negative", False),
        ("likely", "user-report", False),
        ("negative", "confirmed", False),
    ],
)
def test_report_type_transitions_are_googles(previous: str, new: str, allowed: bool) -> None:
    assert model.valid_transition(previous, new) is allowed


def test_a_key_is_revised_once_and_the_same_report_again_changes_nothing() -> None:
    likely = StoredState(100, 144, 2, None)
    assert model.revise(likely, 1) == model.REVISED
    assert model.revise(likely, 2) == model.UNCHANGED
    revised = StoredState(100, 144, 2, 1)
    assert model.revise(revised, 1) == model.UNCHANGED
    with pytest.raises(PublishApiError) as raised:
        model.revise(revised, 5)
    assert raised.value.code == "key_already_revised"
    with pytest.raises(PublishApiError) as raised:
        model.revise(StoredState(100, 144, 1, None), 2)
    assert raised.value.code == "invalid_report_type_transition"


def _revisable(count: int) -> list[revision.RevisableKey]:
    return [revision.RevisableKey(os.urandom(16), 2_700_000 + 144 * i, 144) for i in range(count)]


def test_a_revision_token_opens_to_its_keys_and_its_size_does_not_tell_how_many() -> None:
    data_key = os.urandom(32)
    one, many = _revisable(1), _revisable(28)
    sealed_one = revision.seal(one, 7, data_key, 28)
    sealed_many = revision.seal(many, 7, data_key, 28)
    assert len(sealed_one) == len(sealed_many)
    assert revision.open_token(sealed_one, {7: data_key}) == frozenset(one)
    assert revision.open_token(sealed_many, {7: data_key}) == frozenset(many)
    assert revision.key_id_of(sealed_one) == 7
    assert len(revision.seal(_revisable(29), 7, data_key, 28)) > len(sealed_many)


@pytest.mark.parametrize("damage", ["other key", "tampered", "truncated", "not base64"])
def test_a_revision_token_that_is_not_ours_does_not_open(damage: str) -> None:
    data_key = os.urandom(32)
    token = revision.seal(_revisable(2), 1, data_key, 28)
    raw = bytearray(base64.b64decode(token))
    keys = {1: data_key}
    if damage == "other key":
        keys = {1: os.urandom(32)}
    elif damage == "tampered":
        raw[-1] ^= 1
    elif damage == "truncated":
        raw = raw[:20]
    token = base64.b64encode(bytes(raw)).decode() if damage != "not base64" else "%%%"
    with pytest.raises(revision.InvalidToken):
        revision.open_token(token, keys)


def test_hmackey_in_any_case_is_the_hmac_key_field_as_gos_decoder_reads_it() -> None:
    from covidtracer.verification.model import JsonRequest, decode_json

    body = b'{"hmackey": "AA==", "HEALTHAUTHORITYID": "x", "temporaryExposureKeys": []}'
    decoded = decode_json(
        JsonRequest(body, "application/json"), model.PUBLISH_FIELDS, model.refused
    )
    assert decoded == {"hmacKey": "AA==", "healthAuthorityID": "x", "temporaryExposureKeys": []}
