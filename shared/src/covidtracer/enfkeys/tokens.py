"""The ENF API's bearer tokens: HS256 JWTs signed with a key from Secrets Manager.

An access token names its registration (``sub``) and lives ``access_token_minutes``; a
refresh token also carries a random secret whose SHA-256 the registration row keeps, so
deleting the registration (or a new registration) revokes it. PyJWT is imported on first
use to keep ``import app`` cheap.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from covidtracer.errors import Unauthorized

ISSUER = "covidtracer-enf"
ACCESS = "access"
REFRESH = "refresh"


@dataclass(frozen=True)
class Claims:
    registration_id: uuid.UUID
    kind: str
    refresh_secret: str | None


@cache
def hs256_key(key: str) -> Any:
    """The signing key prepared once: PyJWT's checks of a raw HMAC key cost ~0.3 ms a call."""
    import jwt

    encoded = base64.urlsafe_b64encode(key.encode()).rstrip(b"=").decode()
    return jwt.PyJWK({"kty": "oct", "k": encoded, "alg": "HS256"})


def refresh_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def issue(
    key: str,
    registration_id: uuid.UUID,
    *,
    kind: str,
    now: datetime,
    lifetime: timedelta,
    refresh_secret: str | None = None,
) -> str:
    import jwt

    claims: dict[str, object] = {
        "sub": str(registration_id),
        "typ": kind,
        "iss": ISSUER,
        "aud": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    if refresh_secret is not None:
        claims["rfs"] = refresh_secret
    return jwt.encode(claims, hs256_key(key), algorithm="HS256")


def verify(key: str, token: str | None, *, kind: str, now: datetime) -> Claims:
    """The claims of a valid token of ``kind``; anything else raises ``Unauthorized``."""
    import jwt

    if not token:
        raise Unauthorized()
    try:
        claims = jwt.decode(
            token,
            hs256_key(key),
            algorithms=["HS256"],
            audience=ISSUER,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "typ"], "verify_iat": False, "verify_exp": False},
            leeway=0,
        )
        registration_id = uuid.UUID(str(claims["sub"]))
    except (jwt.PyJWTError, ValueError) as exc:
        raise Unauthorized() from exc
    if claims.get("typ") != kind or int(claims["exp"]) <= int(now.timestamp()):
        raise Unauthorized()
    secret = claims.get("rfs")
    if kind == REFRESH and not isinstance(secret, str):
        raise Unauthorized()
    return Claims(registration_id, kind, secret if isinstance(secret, str) else None)
