"""Contact details (DESIGN §2.2) through the app with real access tokens: sign-in runs
against moto, tokens are verified against its JWKS, records live in moto's DynamoDB."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import jwt
import pytest
from conftest import Api
from cryptography.hazmat.primitives.asymmetric import rsa
from sign_in_flow import SignedIn

from covidtracer import settings
from tracerstack.bootstrap import Bootstrap
from tracerstack.details_fakes import DETAILS

PATH = "/user/details"
RECORD = DETAILS
MINIMAL = {"firstName": "Bo", "lastName": "Ngata", "phone": "+64275550100"}


def _stored_item(aws_stack: Bootstrap, user_id: str) -> dict[str, Any] | None:
    table = aws_stack.outputs["PersonalDetailsTable"]
    found = aws_stack.client("dynamodb").get_item(
        TableName=table, Key={"userId": {"S": user_id}}, ConsistentRead=True
    )
    return found.get("Item")


def test_a_person_saves_reads_patches_and_deletes_their_details(
    api: Api, sign_in: Callable[[], SignedIn], aws_stack: Bootstrap
) -> None:
    me = sign_in()
    status, headers, body = api.send("GET", PATH, headers=me.headers)
    assert (status, body["type"]) == (404, "urn:errors:not-found")
    assert headers["Cache-Control"] == "no-store"

    status, headers, saved = api.send("PUT", PATH, RECORD, me.headers)
    assert status == 200, saved
    assert headers["Cache-Control"] == "no-store"
    assert saved == {
        **RECORD,
        "phone": "+64210123456",
        "email": me.email,
        "updatedAt": saved["updatedAt"],
    }
    assert len(saved["updatedAt"]) == len("2021-10-04T21:05:12.345Z")
    assert saved["updatedAt"].endswith("Z")

    status, headers, read = api.send("GET", PATH, headers=me.headers)
    assert (status, read) == (200, saved)
    assert headers["Cache-Control"] == "no-store"
    item = _stored_item(aws_stack, me.user_id)
    assert item is not None
    assert item["phone"] == {"S": "+64210123456"}  # stored without spaces
    assert item["email"] == {"S": me.email}

    status, _, patched = api.send(
        "PATCH", PATH, {"firstName": "Kiri", "lastName": "Ngata", "phone": "+64 27 555 0100"},
        me.headers,
    )  # fmt: skip
    assert status == 200, patched
    assert patched == {
        **saved,
        "firstName": "Kiri",
        "lastName": "Ngata",
        "phone": "+64275550100",
        "updatedAt": patched["updatedAt"],
    }
    assert patched["updatedAt"] >= saved["updatedAt"]
    assert api.send("GET", PATH, headers=me.headers)[2] == patched

    status, _, replaced = api.send("PUT", PATH, MINIMAL, me.headers)
    assert status == 200
    assert replaced == {**MINIMAL, "email": me.email, "updatedAt": replaced["updatedAt"]}
    item = _stored_item(aws_stack, me.user_id)
    assert item is not None
    assert set(item) == {"userId", "email", "firstName", "lastName", "phone", "updatedAt"}

    status, headers, body = api.send("DELETE", PATH, headers=me.headers)
    assert (status, body) == (204, None)
    assert headers["Cache-Control"] == "no-store"
    assert api.send("GET", PATH, headers=me.headers)[0] == 404
    assert _stored_item(aws_stack, me.user_id) is None
    assert api.send("DELETE", PATH, headers=me.headers)[0] == 204  # a retry is fine


def test_the_first_patch_after_sign_in_creates_the_record(
    api: Api, sign_in: Callable[[], SignedIn], aws_stack: Bootstrap
) -> None:
    """Apps 3.0.0-6.1.1 send exactly this once after the first sign-in, with no record yet,
    and never PUT (CLIENTS.md): a 404 here lost every new user's details."""
    me = sign_in()
    onboarding = {"firstName": "Kiri", "lastName": "Ngata", "phone": "+64 210 123 456"}
    status, headers, created = api.send("PATCH", PATH, onboarding, me.headers)
    assert status == 200, created
    assert headers["Cache-Control"] == "no-store"
    assert created == {
        "firstName": "Kiri",
        "lastName": "Ngata",
        "phone": "+64210123456",
        "email": me.email,
        "updatedAt": created["updatedAt"],
    }
    assert api.send("GET", PATH, headers=me.headers)[2] == created
    item = _stored_item(aws_stack, me.user_id)
    assert item is not None
    assert set(item) == {"userId", "email", "firstName", "lastName", "phone", "updatedAt"}


def test_a_creating_patch_needs_both_names_and_may_leave_out_the_phone(
    api: Api, sign_in: Callable[[], SignedIn], aws_stack: Bootstrap
) -> None:
    me = sign_in()
    status, _, body = api.send("PATCH", PATH, {"firstName": "Kiri"}, me.headers)
    assert (status, list(body["errors"])) == (400, ["LastName"])
    assert _stored_item(aws_stack, me.user_id) is None
    status, _, body = api.send("PATCH", PATH, {}, me.headers)
    assert (status, body["type"]) == (404, "urn:errors:not-found")
    names = {"firstName": "Kiri", "lastName": "Ngata"}
    status, _, created = api.send("PATCH", PATH, names, me.headers)
    assert status == 200 and "phone" not in created
    item = _stored_item(aws_stack, me.user_id)
    assert item is not None and "phone" not in item


# Every rule of §2.2 is a table in the unit tier (shared/tests/unit/contactdetails); here the
# error's shape over HTTP, for PUT and PATCH: 400, keyed by the PascalCase field, no echo.


def test_a_broken_rule_is_a_validation_error_for_that_field_and_stores_nothing(
    api: Api, sign_in: Callable[[], SignedIn], aws_stack: Bootstrap
) -> None:
    me = sign_in()
    for method in ("PUT", "PATCH"):
        status, headers, body = api.send(
            method, PATH, {**RECORD, "phone": "021 012 3456"}, me.headers
        )
        assert status == 400, (method, body)
        assert body["type"] == "urn:errors:validation"
        assert list(body["errors"]) == ["Phone"]
        assert headers["Cache-Control"] == "no-store"
        assert "021 012 3456" not in json.dumps(body, ensure_ascii=False)
    assert _stored_item(aws_stack, me.user_id) is None


def test_a_body_that_is_not_a_json_object_is_a_validation_error(api: Api, member: SignedIn) -> None:
    for body in ("not json", "[]", "", '{"firstName": '):
        status, _, answer = api.send("PUT", PATH, body, member.headers)
        assert status == 400, (body, answer)
        assert list(answer["errors"]) == ["Body"], body


# ---------------------------------------------------------------------------- credentials


def _moto_signed(claims: dict[str, Any]) -> str:
    """A token signed with moto's own Cognito key (the pool's JWKS trusts it)."""
    raw = resources.files("moto.cognitoidp").joinpath("resources/jwks-private.json.gz")
    key = json.loads(gzip.decompress(raw.read_bytes()))
    private = jwt.PyJWK.from_dict(key).key
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": key["kid"]})


def _claims(me: SignedIn) -> dict[str, Any]:
    return jwt.decode(me.access_token, options={"verify_signature": False})  # type: ignore[no-any-return]


def _bad_credentials(me: SignedIn) -> dict[str, dict[str, str]]:
    claims = _claims(me)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header = jwt.get_unverified_header(me.access_token)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": header["kid"]})
    head, _, signature = me.access_token.split(".")
    tampered_claims = {**claims, "sub": "00000000-0000-0000-0000-000000000000"}
    tampered_payload = jwt.utils.base64url_encode(json.dumps(tampered_claims).encode()).decode()
    now = int(time.time())
    return {
        "none": {},
        "not bearer": {"Authorization": f"Basic {me.access_token}"},
        "empty bearer": {"Authorization": "Bearer "},
        "garbage": {"Authorization": "Bearer not-a-jwt"},
        "forged signature": {"Authorization": f"Bearer {forged}"},
        "tampered payload": {"Authorization": f"Bearer {head}.{tampered_payload}.{signature}"},
        "unsigned": {
            "Authorization": "Bearer " + jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
        },
        "expired": {
            "Authorization": "Bearer "
            + _moto_signed({**claims, "exp": now - 60, "iat": now - 3660})
        },
        "id token": {"Authorization": "Bearer " + _moto_signed({**claims, "token_use": "id"})},
        "other client": {
            "Authorization": "Bearer " + _moto_signed({**claims, "client_id": "someone-elses"})
        },
        "other issuer": {
            "Authorization": "Bearer "
            + _moto_signed({**claims, "iss": "https://cognito-idp.example/other-pool"})
        },
    }


def test_the_signed_tokens_of_the_helpers_are_accepted_when_they_are_right(
    api: Api, member: SignedIn
) -> None:
    """The control for the table below: a token made like the bad ones, but valid, works."""
    me = member
    valid = _moto_signed({**_claims(me), "exp": int(time.time()) + 600})
    status, _, _ = api.send("PUT", PATH, MINIMAL, {"Authorization": f"Bearer {valid}"})
    assert status == 200


def test_a_missing_expired_forged_or_foreign_token_is_401_and_reveals_nothing(
    api: Api, member: SignedIn, aws_stack: Bootstrap
) -> None:
    me = member
    api.send("PUT", PATH, RECORD, me.headers)
    before = _stored_item(aws_stack, me.user_id)
    for name, headers in _bad_credentials(me).items():
        for method, body in (("GET", None), ("PUT", MINIMAL), ("PATCH", MINIMAL), ("DELETE", None)):
            status, answer_headers, answer = api.send(method, PATH, body, headers)
            assert status == 401, (name, method, answer)
            assert answer["type"] == "urn:errors:unauthorized"
            assert answer_headers["Cache-Control"] == "no-store"
            assert "Aroha" not in json.dumps(answer) and me.email not in json.dumps(answer)
    assert _stored_item(aws_stack, me.user_id) == before


def test_another_persons_token_never_reads_or_changes_my_record(
    api: Api, sign_in: Callable[[], SignedIn], aws_stack: Bootstrap
) -> None:
    alice, bob = sign_in(), sign_in()
    assert alice.user_id != bob.user_id
    api.send("PUT", PATH, RECORD, alice.headers)
    alices = _stored_item(aws_stack, alice.user_id)

    status, _, body = api.send("GET", PATH, headers=bob.headers)
    assert status == 404 and "Aroha" not in json.dumps(body)
    # Bob has no record: his PATCH could only create his own (and lacks a last name).
    assert api.send("PATCH", PATH, {"firstName": "Mallory"}, bob.headers)[0] == 400
    assert _stored_item(aws_stack, bob.user_id) is None
    status, _, body = api.send("PUT", PATH, {**MINIMAL, "userId": alice.user_id}, bob.headers)
    assert (status, list(body["errors"])) == (400, ["UserId"])
    assert api.send("GET", f"{PATH}/{alice.user_id}", headers=bob.headers)[0] in (403, 404)
    assert api.send("DELETE", f"{PATH}?userId={alice.user_id}", headers=bob.headers)[0] == 204

    status, _, bobs = api.send("PUT", PATH, MINIMAL, bob.headers)
    assert status == 200 and bobs["email"] == bob.email
    assert api.send("PATCH", PATH, {"firstName": "Mallory"}, bob.headers)[0] == 200
    assert api.send("DELETE", PATH, headers=bob.headers)[0] == 204

    assert _stored_item(aws_stack, alice.user_id) == alices
    status, _, mine = api.send("GET", PATH, headers=alice.headers)
    assert status == 200 and mine["firstName"] == "Aroha" and mine["email"] == alice.email


def test_a_dynamodb_outage_is_a_503_that_echoes_nothing(
    api: Api, member: SignedIn, monkeypatch: pytest.MonkeyPatch, iam_denials: Any
) -> None:
    me = member
    monkeypatch.setenv("PERSONAL_DETAILS_TABLE", "no-such-table")
    settings.reset()
    for method, body in (("GET", None), ("PUT", RECORD), ("PATCH", MINIMAL), ("DELETE", None)):
        status, headers, answer = api.send(method, PATH, body, me.headers)
        assert (status, answer["type"]) == (503, "urn:errors:unavailable"), method
        assert headers["Retry-After"] and headers["Cache-Control"] == "no-store"
        assert "Aroha" not in json.dumps(answer) and "no-such-table" not in json.dumps(answer)
    # A table outside the role is refused by IAM before DynamoDB looks for it, as in AWS.
    assert {d.resource.rpartition("/")[2] for d in iam_denials()} == {"no-such-table"}
