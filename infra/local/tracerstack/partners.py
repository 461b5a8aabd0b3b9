"""Local stand-ins for the external parties: NCTS, FCM, the SMS provider and Apple DeviceCheck.

One small HTTP server records what the backend sends and answers like the real services, so
the project's adapters run their real HTTP code locally and in tests:

- NCTS (root paths): ``POST /consent-codes`` issues a diary consent code (201
  ``{"consentCode"}``); ``POST /location-history`` accepts a diary only with a code it issued
  (else 400 ``{"error": "invalid_consent_code"}``); any other ``POST`` is recorded and
  answered 202.
- FCM HTTP v1: ``POST /fcm/v1/projects/{project}/messages:send`` with a bearer token the
  stand-in issued (else 401 ``UNAUTHENTICATED``) and platform blocks FCM would accept (else
  400 ``INVALID_ARGUMENT``); OAuth2 token at ``POST /oauth2/token``
  for a JWT-bearer grant (form ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
  and a three-part ``assertion``, else 400 ``invalid_grant``), as Google's token URI.
- SMS, Twilio-style: ``POST /sms/2010-04-01/Accounts/{sid}/Messages.json`` (form encoded).
- Apple DeviceCheck: ``POST /devicecheck/v1/validate_device_token``.
- ``GET /outbox``: everything sent to people or partners, oldest first, each
  ``{channel, to, body, at}``; email comes from moto's SES (read over its HTTP API).
  ``DELETE /outbox`` empties it.
- ``POST /_control/outage`` ``{"partner": "ncts", "status": 503}`` makes a partner fail
  until ``DELETE /_control/outage``: how tests show a dependency outage gives a 503.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tracerstack import in_thread, serve, server_arguments

CONSENT_CODE_ALPHABET = string.ascii_uppercase + string.digits
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PartnerState:
    """What the stand-ins have received; shared by the request threads."""

    def __init__(self, aws_endpoint: str | None) -> None:
        self.aws_endpoint = aws_endpoint
        self.lock = threading.Lock()
        self.outbox: list[dict[str, Any]] = []
        self.consent_codes: set[str] = set()
        self.outages: dict[str, int] = {}
        self.access_tokens: set[str] = set()
        self._seen_emails: set[str] = set()

    def record(self, channel: str, to: str, body: str, **extra: Any) -> None:
        with self.lock:
            self.outbox.append({"channel": channel, "to": to, "body": body, "at": _now(), **extra})

    def issue_consent_code(self) -> str:
        code = "".join(secrets.choice(CONSENT_CODE_ALPHABET) for _ in range(6))
        with self.lock:
            self.consent_codes.add(code)
        return code

    def collect_emails(self) -> None:
        """Move emails that moto's SES accepted into the outbox, in the order first seen."""
        if not self.aws_endpoint:
            return
        try:
            with urllib.request.urlopen(
                f"{self.aws_endpoint}/moto-api/data.json", timeout=5
            ) as response:
                models = json.load(response)
        except OSError:
            return
        for message in models.get("ses", {}).get("Message", []):
            with self.lock:
                if message["id"] in self._seen_emails:
                    continue
                self._seen_emails.add(message["id"])
            for address in message.get("destinations", {}).get("ToAddresses", []):
                self.record(
                    "email",
                    address,
                    message.get("body", ""),
                    subject=message.get("subject", ""),
                    sender=message.get("source"),
                )


def _fcm_platform_blocks_valid(message: dict[str, Any]) -> bool:
    """FCM's own checks of the platform blocks: data values, APNs headers are strings;
    ``android.priority`` is ``normal`` or ``high``; the APNs payload is an object."""
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return False
    android = message.get("android", {})
    if not isinstance(android, dict) or android.get("priority", "normal") not in (
        "normal",
        "high",
    ):
        return False
    apns = message.get("apns", {})
    if not isinstance(apns, dict):
        return False
    headers = apns.get("headers", {})
    payload = apns.get("payload", {})
    return (
        isinstance(headers, dict)
        and all(isinstance(v, str) for v in headers.values())
        and isinstance(payload, dict)
    )


class _Handler(BaseHTTPRequestHandler):
    server: _PartnerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the outbox is the record; request lines would only be noise

    @property
    def state(self) -> PartnerState:
        return self.server.state

    def _read(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, raw: bytes) -> Any:
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def _outage(self, partner: str) -> bool:
        status = self.state.outages.get(partner)
        if status:
            self._send(status, {"error": f"{partner} stand-in is in a simulated outage"})
            return True
        return False

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/outbox":
            self.state.collect_emails()
            with self.state.lock:
                self._send(200, list(self.state.outbox))
        elif self.path == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._send(404, {"error": "not found"})

    def do_DELETE(self) -> None:
        self._read()
        if self.path == "/outbox":
            self.state.collect_emails()  # so old emails do not reappear later
            with self.state.lock:
                self.state.outbox.clear()
            self._send(204)
        elif self.path == "/_control/outage":
            self.state.outages.clear()
            self._send(204)
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        raw = self._read()
        path = self.path.split("?")[0]
        if path == "/_control/outage":
            body = self._json(raw) or {}
            self.state.outages[str(body.get("partner"))] = int(body.get("status", 503))
            self._send(204)
        elif path.startswith("/fcm/"):
            self._fcm(path, raw)
        elif path == "/oauth2/token":
            self._oauth2_token(raw)
        elif path.startswith("/sms/"):
            self._sms(raw)
        elif path.startswith("/devicecheck/"):
            self._devicecheck(raw)
        else:
            self._ncts(path, raw)

    def _ncts(self, path: str, raw: bytes) -> None:
        if path == "/consent-codes":
            self._send(201, {"consentCode": self.state.issue_consent_code()})
            return
        if self._outage("ncts"):
            return
        body = self._json(raw)
        if body is None:
            self._send(400, {"error": "invalid_json"})
            return
        if path == "/location-history" and body.get("consentCode") not in self.state.consent_codes:
            self._send(400, {"error": "invalid_consent_code"})
            return
        self.state.record("ncts", path.lstrip("/"), raw.decode())
        self._send(204 if path == "/location-history" else 202)

    def _oauth2_token(self, raw: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        assertion = form.get("assertion", "")
        if (
            form.get("grant_type") != JWT_BEARER_GRANT
            or assertion.count(".") != 2
            or not all(assertion.split("."))
        ):
            self._send(400, {"error": "invalid_grant"})
            return
        token = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.access_tokens.add(token)
        self._send(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _fcm(self, path: str, raw: bytes) -> None:
        if self._outage("fcm"):
            return
        scheme, _, token = str(self.headers.get("Authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or token not in self.state.access_tokens:
            self._send(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
            return
        body = self._json(raw)
        message = body.get("message") if isinstance(body, dict) else None
        if (
            not isinstance(message, dict)
            or not (message.get("topic") or message.get("token"))
            or not _fcm_platform_blocks_valid(message)
        ):
            self._send(400, {"error": {"status": "INVALID_ARGUMENT"}})
            return
        self.state.record("push", message.get("topic") or message.get("token"), raw.decode())
        project = path.split("/")[4] if path.count("/") >= 4 else "local"
        self._send(200, {"name": f"projects/{project}/messages/{int(time.time() * 1e6)}"})

    def _sms(self, raw: bytes) -> None:
        if self._outage("sms"):
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        if not form.get("To") or not form.get("Body"):
            self._send(
                400, {"code": 21604, "message": "A 'To' phone number and Body are required."}
            )
            return
        self.state.record("sms", form["To"], form["Body"], sender=form.get("From"))
        self._send(201, {"sid": f"SM{secrets.token_hex(16)}", "status": "queued"})

    def _devicecheck(self, raw: bytes) -> None:
        if self._outage("devicecheck"):
            return
        body = self._json(raw)
        if not isinstance(body, dict) or not body.get("device_token"):
            self._send(400, {"error": "Missing or incorrectly formatted device token payload"})
            return
        self._send(200)


class _PartnerServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections from a burst of clients.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: PartnerState) -> None:
        super().__init__(address, _Handler)
        self.state = state


def make_server(host: str, port: int, aws_endpoint: str | None) -> _PartnerServer:
    return _PartnerServer((host, port), PartnerState(aws_endpoint))


def serve_in_thread(host: str, port: int, aws_endpoint: str | None) -> _PartnerServer:
    return in_thread(make_server(host, port, aws_endpoint), "partners")


def main() -> None:
    parser = server_arguments("Local stand-ins for NCTS, FCM, SMS and Apple", 8025)
    parser.add_argument("--aws-endpoint", default=None)
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.aws_endpoint)
    serve(server, "partners")


if __name__ == "__main__":
    main()
