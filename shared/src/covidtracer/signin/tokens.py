"""Who is calling: the ``userId`` of a Cognito access token (DESIGN §2.2).

Behind API Gateway the Cognito authorizer has verified the token and put its claims in
``request.context["authorizer"]["claims"]``. Where no authorizer runs (``chalice local``,
``VERIFY_TOKENS_IN_APP=true``) the app verifies the token itself: RS256 signature against
the pool's JWKS (fetched once per execution environment), ``exp``, ``iss``,
``token_use == "access"`` and ``client_id`` among the app clients. Either way a missing or
bad token is ``Unauthorized``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Collection, Mapping
from typing import Any

from covidtracer import config
from covidtracer.contactdetails.settings import details_settings
from covidtracer.errors import Unauthorized, Unavailable

JWKS_TIMEOUT_SECONDS = 5
# An unknown key id refetches the JWKS (Cognito rotated its key), at most this often, so
# junk tokens cannot make every request fetch.
JWKS_REFETCH_COOLDOWN_SECONDS = 300
ALGORITHM = "RS256"


def cognito_issuer(region: str, user_pool_id: str) -> str:
    """The ``iss`` of the pool's tokens; moto uses the same form."""
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def jwks_url(region: str, user_pool_id: str, endpoint_url: str | None) -> str:
    """Cognito serves the JWKS under the issuer; moto serves it under its own endpoint."""
    base = (
        endpoint_url.rstrip("/") if endpoint_url else f"https://cognito-idp.{region}.amazonaws.com"
    )
    return f"{base}/{user_pool_id}/.well-known/jwks.json"


def fetch_json(url: str) -> Mapping[str, Any]:
    """GET a JSON document; a failure is ``Unavailable`` (we cannot tell good from bad)."""
    try:
        with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310
            document = json.load(response)
    except (OSError, ValueError) as exc:
        raise Unavailable("cognito-jwks") from exc
    if not isinstance(document, dict):
        raise Unavailable("cognito-jwks")
    return document


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        client_ids: Collection[str],
        fetch_jwks: Callable[[], Mapping[str, Any]],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer
        self._client_ids = frozenset(client_ids)
        self._fetch_jwks = fetch_jwks
        self._monotonic = monotonic
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def user_id(self, token: str | None) -> str:
        """The ``sub`` of a valid access token. Raises Unauthorized, or Unavailable when the
        JWKS cannot be fetched."""
        import jwt

        if not token:
            raise Unauthorized
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthorized
        key = self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"require": ["exp", "iss", "sub", "token_use", "client_id"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized from exc
        return _checked_user_id(claims, self._client_ids)

    def _key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys and self._may_fetch():
                self._load()
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized
        return key

    def _may_fetch(self) -> bool:
        return (
            self._fetched_at is None
            or self._monotonic() - self._fetched_at >= JWKS_REFETCH_COOLDOWN_SECONDS
        )

    def _load(self) -> None:
        from jwt import PyJWKSet, PyJWTError

        document = self._fetch_jwks()
        self._fetched_at = self._monotonic()
        try:
            keys = PyJWKSet.from_dict(dict(document)).keys
        except PyJWTError as exc:
            raise Unavailable("cognito-jwks") from exc
        self._keys = {str(k.key_id): k.key for k in keys if k.key_id}


def _checked_user_id(claims: Mapping[str, Any], client_ids: frozenset[str]) -> str:
    if claims.get("token_use") != "access" or claims.get("client_id") not in client_ids:
        raise Unauthorized
    return _subject(claims)


def _subject(claims: Mapping[str, Any]) -> str:
    """The token's ``sub``: the userId. Raises Unauthorized when it has none."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized
    return sub


@config.cached
def verifier() -> TokenVerifier:
    """The details API's verifier, one per execution environment (so is its JWKS)."""
    details = details_settings()
    url = jwks_url(details.aws.region, details.user_pool_id, details.aws.endpoint_url)
    return TokenVerifier(
        issuer=cognito_issuer(details.aws.region, details.user_pool_id),
        client_ids=details.app_client_ids.values(),
        fetch_jwks=lambda: fetch_json(url),
    )


def authenticated_user_id(token: str | None, context: Mapping[str, Any]) -> str:
    """The caller's userId, from our own verification or from API Gateway's authorizer.
    Raises Unauthorized."""
    if details_settings().sign_in.verify_tokens_in_app:
        return verifier().user_id(token)
    claims = (context.get("authorizer") or {}).get("claims") or {}
    if claims.get("token_use", "access") != "access":
        raise Unauthorized  # an ID token is not a credential for this API
    return _subject(claims)
