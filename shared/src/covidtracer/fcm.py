"""Firebase Cloud Messaging, HTTP v1: send one message, authenticated as a service account.

OAuth2 as Google documents it for servers: a JWT (RS256, signed with the service account's
private key; ``iss`` = client email, ``aud`` = token URI, the ``firebase.messaging`` scope)
exchanged at the token URI through the JWT-bearer grant for an access token, which is
reused until a minute before it expires. The service-account JSON comes from Secrets Manager
(``FCM_SERVICE_ACCOUNT_SECRET_ID``); locally its token URI is the partner stand-in's.

Errors: ``Unavailable("fcm")`` for anything short of FCM accepting the message. A 401 drops
the cached token and tries once more with a fresh one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from covidtracer import aws, logs, outbound
from covidtracer.errors import Unavailable
from covidtracer.settings import FcmSettings

log = logs.get_logger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 3600
TOKEN_EARLY_REFRESH_SECONDS = 60


class FcmClient:
    def __init__(
        self,
        settings: FcmSettings,
        service_account: Callable[[], Mapping[str, str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base_url = settings.base_url.rstrip("/")
        self._timeout = settings.timeout_seconds
        self._service_account = service_account
        self._clock = clock
        self._token: tuple[str, float] | None = None

    def send(self, message: Mapping[str, Any]) -> None:
        """Sends one HTTP v1 request body (``{"message": {...}}``). Raises ``Unavailable``."""
        account = self._account()
        url = f"{self._base_url}/v1/projects/{account['project_id']}/messages:send"
        for attempt in (1, 2):
            response = self._request(
                url, json=message, headers={"Authorization": f"Bearer {self._access_token()}"}
            )
            if response.status_code == 401 and attempt == 1:
                self._token = None  # revoked or expired early: one more try with a new one
                continue
            if 200 <= response.status_code < 300:
                return
            log.error("fcm refused the message", extra={"status": response.status_code})
            raise Unavailable(f"fcm (send answered {response.status_code})")

    def _account(self) -> Mapping[str, str]:
        try:
            account = self._service_account()
            for key in ("project_id", "client_email", "private_key", "token_uri"):
                if not account.get(key):
                    raise ValueError(f"the service account lacks {key}")
        except Exception as error:
            # The secret is missing, unreadable or not a service account: operator's fix.
            raise Unavailable(f"fcm (service account: {type(error).__name__})") from error
        return account

    def _access_token(self) -> str:
        now = self._clock()
        if self._token and self._token[1] - TOKEN_EARLY_REFRESH_SECONDS > now:
            return self._token[0]
        import jwt

        account = self._account()
        assertion = jwt.encode(
            {
                "iss": account["client_email"],
                "scope": SCOPE,
                "aud": account["token_uri"],
                "iat": int(now),
                "exp": int(now) + ASSERTION_LIFETIME_SECONDS,
            },
            account["private_key"],
            algorithm="RS256",
        )
        response = self._request(
            account["token_uri"], data={"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
        )
        try:
            body = response.json()
            token, lifetime = str(body["access_token"]), float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as error:
            log.error("fcm token grant refused", extra={"status": response.status_code})
            raise Unavailable(f"fcm (token grant answered {response.status_code})") from error
        self._token = (token, now + lifetime)
        return token

    def _request(self, url: str, **kwargs: Any) -> outbound.Reply:
        return outbound.post(url, dependency="fcm", timeout=self._timeout, retries=1, **kwargs)


@cache
def client(settings: FcmSettings) -> FcmClient:
    """The client for these settings (its access token lives as long as the environment)."""
    return FcmClient(
        settings, lambda: json.loads(aws.secret_string(settings.service_account_secret_id))
    )
