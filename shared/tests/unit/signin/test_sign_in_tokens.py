"""The token verifier with a key pair of the test's own and an injected JWKS (no network)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from covidtracer.errors import Unauthorized, Unavailable
from covidtracer.signin.tokens import TokenVerifier, cognito_issuer, jwks_url

ISSUER = cognito_issuer("ap-southeast-2", "ap-southeast-2_POOL")
CLIENTS = {"ios-client", "android-client"}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key: Any = KEY, kid: str = "k1") -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": kid, "alg": "RS256", "use": "sig"}]}


def token(key: Any = KEY, kid: str = "k1", alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "sub": "5c3f1c0e-user",
        "iss": ISSUER,
        "client_id": "ios-client",
        "token_use": "access",
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


class Fetches:
    def __init__(self, *documents: dict[str, Any]) -> None:
        self.documents = list(documents)
        self.count = 0

    def __call__(self) -> dict[str, Any]:
        self.count += 1
        return self.documents[min(self.count, len(self.documents)) - 1]


def verifier(fetch: Fetches, clock: list[float] | None = None) -> TokenVerifier:
    clock = clock if clock is not None else [0.0]
    return TokenVerifier(ISSUER, CLIENTS, fetch, monotonic=lambda: clock[0])


def test_a_valid_access_token_gives_its_subject_and_the_jwks_is_fetched_once() -> None:
    fetch = Fetches(jwks())
    check = verifier(fetch)
    assert check.user_id(token()) == "5c3f1c0e-user"
    assert check.user_id(token(client_id="android-client")) == "5c3f1c0e-user"
    assert fetch.count == 1


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "not.a.jwt",
        token(key=OTHER_KEY),  # forged: right kid, wrong key
        token(exp=int(time.time()) - 1),
        token(exp=None),
        token(iss="https://cognito-idp.ap-southeast-2.amazonaws.com/another_pool"),
        token(client_id="someone-elses-client"),
        token(client_id=None),
        token(token_use="id"),
        token(token_use=None),
        token(sub=None),
        token(kid="unknown"),
        token(key="a-shared-secret-of-at-least-32-bytes!", alg="HS256"),
    ],
)
def test_bad_tokens_are_unauthorized(bad: str | None) -> None:
    with pytest.raises(Unauthorized):
        verifier(Fetches(jwks())).user_id(bad)


def test_an_unsigned_token_is_unauthorized() -> None:
    unsigned = jwt.encode({"sub": "x", "iss": ISSUER}, None, algorithm="none")
    with pytest.raises(Unauthorized):
        verifier(Fetches(jwks())).user_id(unsigned)


def test_an_unknown_key_id_refetches_the_jwks_at_most_every_five_minutes() -> None:
    fetch = Fetches(jwks(kid="old"), jwks(kid="k1"))
    clock = [0.0]
    check = verifier(fetch, clock)
    with pytest.raises(Unauthorized):
        check.user_id(token())
    clock[0] = 299
    with pytest.raises(Unauthorized):
        check.user_id(token())
    assert fetch.count == 1
    clock[0] = 300
    assert check.user_id(token()) == "5c3f1c0e-user"  # Cognito rotated its key
    assert fetch.count == 2


def test_a_jwks_that_cannot_be_read_is_unavailable_not_unauthorized() -> None:
    with pytest.raises(Unavailable):
        verifier(Fetches({"keys": "garbage"})).user_id(token())


def test_jwks_urls() -> None:
    assert jwks_url("ap-southeast-2", "pool", None) == (
        "https://cognito-idp.ap-southeast-2.amazonaws.com/pool/.well-known/jwks.json"
    )
    assert jwks_url("ap-southeast-2", "pool", "http://127.0.0.1:5000/") == (
        "http://127.0.0.1:5000/pool/.well-known/jwks.json"
    )
