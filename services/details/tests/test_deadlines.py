"""Whatever freezes, every route of the app API answers within its deadline (issue 20, item
4): the AWS APIs (DynamoDB through pynamodb, Cognito, S3, Secrets Manager: a server that
accepts connections and never answers), NCTS and FCM. A frozen dependency is the documented
503 (``urn:errors:unavailable``, with ``Retry-After``), timed; a frozen FCM only defers the
push (the event is stored and published, the 2-hourly job pushes it later). The deadlines
are the production ones made short by settings (production: docs/operations.md, "Time
budget")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import QUICK_SIGN_IN, Api
from sign_in_flow import SignedIn
from test_contact_details import RECORD
from test_exposure_event_matches import match
from test_exposure_events import event
from test_faults import _consent_code, _diary

from tracerstack.pytest_plugin import Partners, UnresponsiveServer, reconfigure, within

AWS_TIMEOUT_MS = 500
PARTNER_TIMEOUT_S = 1
# What a frozen dependency may cost here: the calls before the failing one, its deadline
# (a few of them where a refund or a second table follows), and a loaded machine's delays.
# Without the deadlines (read 10 s, 4 attempts) each of these took 40 s or more.
ANSWER_WITHIN_SECONDS = 10.0
HANG_LIMIT_SECONDS = 30.0
EVENTS = "/ncts/exposure-events"


@pytest.fixture
def frozen_aws(
    api: Api,
    service_env: dict[str, str],
    unresponsive_server: UnresponsiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[UnresponsiveServer]:
    timeout = str(AWS_TIMEOUT_MS)
    names = ("AWS_CONNECT_TIMEOUT_MS", "AWS_READ_TIMEOUT_MS", "COGNITO_READ_TIMEOUT_MS")
    reconfigure(monkeypatch, **dict.fromkeys(names, timeout))
    yield unresponsive_server
    # Later tests: the real endpoint.
    reconfigure(monkeypatch, AWS_ENDPOINT_URL=service_env["AWS_ENDPOINT_URL"])


def _timed_503(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> None:
    timed = within(HANG_LIMIT_SECONDS, lambda: api.send(method, path, body, headers), lambda: None)
    assert timed.error is None, timed.error
    status, answer_headers, problem = timed.value
    assert status == 503, (path, problem)
    if path != "/health":
        assert problem["type"] == "urn:errors:unavailable", problem
        assert answer_headers["Retry-After"]
    assert timed.seconds < ANSWER_WITHIN_SECONDS, f"{method} {path}: {timed.seconds:.1f} s"


def test_frozen_aws_apis_are_a_503_within_the_deadline_on_every_route(
    member: SignedIn,
    api: Api,
    ncts_key: dict[str, str],
    service_env: dict[str, str],
    outbox: Partners,
    frozen_aws: UnresponsiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert api.send("PUT", "/user/details", RECORD, member.headers)[0] == 200  # keys cached
    code = _consent_code(outbox)
    reconfigure(monkeypatch, **QUICK_SIGN_IN, AWS_ENDPOINT_URL=frozen_aws.url)
    client_id = json.loads(service_env["APP_CLIENT_IDS"])["ios"]
    calls: list[tuple[str, str, Any, dict[str, str]]] = [
        ("GET", "/user/details", None, member.headers),
        ("PATCH", "/user/details", {"gender": "Wahine"}, member.headers),
        ("POST", "/user/auth/initiate", {"clientId": client_id, "email": "x@example.nz"}, {}),
        ("POST", "/v2/user/location-history", _diary(code), {}),
        ("POST", "/v2/exposure-event-matches", match(), {}),
        ("POST", EVENTS, event("frozen1"), ncts_key),
        ("GET", "/health", None, {}),
    ]
    for method, path, body, headers in calls:
        _timed_503(api, method, path, body, headers)
    assert frozen_aws.accepted.is_set()
    assert outbox.outbox() == []  # nothing was half-sent


@pytest.fixture
def frozen_partner(
    api: Api, unresponsive_server: UnresponsiveServer, monkeypatch: pytest.MonkeyPatch
) -> UnresponsiveServer:
    timeout = str(PARTNER_TIMEOUT_S)
    reconfigure(monkeypatch, NCTS_TIMEOUT_SECONDS=timeout, FCM_TIMEOUT_SECONDS=timeout)
    return unresponsive_server


def test_a_frozen_ncts_is_a_503_within_the_deadline(
    api: Api,
    ncts_key: dict[str, str],
    outbox: Partners,
    frozen_partner: UnresponsiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = _consent_code(outbox)
    assert api.send("POST", EVENTS, event("match1"), ncts_key)[0] in (200, 201)
    reconfigure(monkeypatch, NCTS_BASE_URL=frozen_partner.url)
    _timed_503(api, "POST", "/v2/user/location-history", _diary(code), {})
    _timed_503(api, "POST", "/v2/exposure-event-matches", match(phone="+64 21 333 0002"), {})
    assert frozen_partner.accepted.is_set()


def test_a_frozen_fcm_defers_the_push_within_the_deadline(
    api: Api,
    ncts_key: dict[str, str],
    outbox: Partners,
    frozen_partner: UnresponsiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FCM is not needed for the answer: the event is stored and in the feed, the push waits
    for the next run of the events-feed job (DESIGN §2.5)."""
    reconfigure(monkeypatch, FCM_BASE_URL=frozen_partner.url)
    timed = within(
        HANG_LIMIT_SECONDS,
        lambda: api.send("POST", EVENTS, event("frozenfcm1"), ncts_key),
        lambda: None,
    )
    assert timed.error is None, timed.error
    status, _, _ = timed.value
    assert status in (200, 201)
    assert timed.seconds < ANSWER_WITHIN_SECONDS, f"{timed.seconds:.1f} s"
    assert frozen_partner.accepted.is_set()  # the push was tried
    assert [m for m in outbox.outbox() if m["channel"] == "push"] == []
