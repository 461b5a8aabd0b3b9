"""Token checks against the pool's JWKS as moto serves it over HTTP, and the 401 the app
gives under ``chalice local`` for a missing or bad token."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import jwt
import pytest
from chalice.test import Client

from covidtracer import settings
from covidtracer.errors import Unauthorized
from covidtracer.http import ApiApp, bearer_token, json_response
from covidtracer.signin.tokens import authenticated_user_id, cognito_issuer, verifier


def moto_signing_key() -> Any:
    """The private key moto signs every pool's tokens with (so tokens can be made to fail
    on exactly one claim)."""
    raw = resources.files("moto.cognitoidp").joinpath("resources/jwks-private.json.gz")
    return jwt.PyJWK(json.loads(gzip.decompress(raw.read_bytes()))).key


def moto_token(service_env: dict[str, str], **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "sub": "8d1c2f5e-user",
        "iss": cognito_issuer(service_env["AWS_REGION"], service_env["USER_POOL_ID"]),
        "client_id": json.loads(service_env["APP_CLIENT_IDS"])["web"],
        "token_use": "access",
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(payload, moto_signing_key(), algorithm="RS256", headers={"kid": "dummy"})


def test_a_token_moto_signed_for_this_pool_and_client_verifies(service_env: dict[str, str]) -> None:
    assert verifier().user_id(moto_token(service_env)) == "8d1c2f5e-user"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 5},
        {"client_id": "not-one-of-ours"},
        {"token_use": "id"},
        {"iss": "https://cognito-idp.ap-southeast-2.amazonaws.com/ap-southeast-2_otherpool"},
    ],
)
def test_expired_foreign_and_id_tokens_are_rejected(
    service_env: dict[str, str], claims: dict[str, Any]
) -> None:
    with pytest.raises(Unauthorized):
        verifier().user_id(moto_token(service_env, **claims))


@pytest.fixture
def who_am_i(service_env: dict[str, str]) -> Iterator[Client]:
    app = ApiApp("who-am-i")

    @app.route("/me")
    def me() -> Any:
        request = app.current_request
        user_id = authenticated_user_id(bearer_token(request), request.context or {})
        return json_response({"userId": user_id})

    with Client(app) as client:
        yield client


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "Bearer {forged}",
        "Bearer {expired}",
    ],
)
def test_a_missing_or_bad_token_is_a_401_under_chalice_local(
    who_am_i: Client, service_env: dict[str, str], authorization: str | None
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = moto_token(service_env)
    forged = jwt.encode(
        jwt.decode(good, options={"verify_signature": False}),
        forged_key,
        algorithm="RS256",
        headers={"kid": "dummy"},
    )
    values = {"forged": forged, "expired": moto_token(service_env, exp=int(time.time()) - 1)}
    headers = {"Authorization": authorization.format(**values)} if authorization else {}
    response = who_am_i.http.get("/me", headers=headers)
    assert response.status_code == 401
    assert json.loads(response.body)["type"] == "urn:errors:unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_good_token_names_the_caller(who_am_i: Client, service_env: dict[str, str]) -> None:
    response = who_am_i.http.get(
        "/me", headers={"Authorization": f"Bearer {moto_token(service_env)}"}
    )
    assert response.status_code == 200
    assert json.loads(response.body) == {"userId": "8d1c2f5e-user"}


def test_behind_api_gateway_the_authorizers_claims_are_used(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from covidtracer.signin.tokens import authenticated_user_id as from_context

    monkeypatch.setenv("VERIFY_TOKENS_IN_APP", "false")
    settings.reset()
    claims = {"sub": "from-authorizer", "token_use": "access", "client_id": "x"}
    assert from_context(None, {"authorizer": {"claims": claims}}) == "from-authorizer"
    for context in (
        {},
        {"authorizer": {}},
        {"authorizer": {"claims": {**claims, "token_use": "id"}}},
    ):
        with pytest.raises(Unauthorized):
            from_context("ignored", context)
