"""Issue 11's hostile-input tables against the ENF API's rules, without HTTP: each value the
app tier once replayed route by route is refused here by the rule that refuses it
(``services/enf/tests`` keeps one request per error shape). Bearer checks run through the
use cases with in-memory adapters: a missing or forged token is refused before any I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from covidtracer.enffiles import service as files
from covidtracer.enfkeys import client_config_store, model, service, wiring
from covidtracer.enfkeys.client_config_store import EXPOSURE, NOTIFICATION, ClientDocuments
from covidtracer.enfkeys.model import ApiRequest
from covidtracer.enfkeys.settings import DEFAULT_METRICS_INTERVALS, EnfSettings
from covidtracer.errors import Unauthorized, ValidationError

NOW = datetime(2021, 10, 20, 9, 30, tzinfo=UTC)
TODAY = NOW.date()
UNREACHABLE = "postgresql://127.0.0.1:9/nowhere"


def _errors(call: Any, *args: Any, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        call(*args, **kwargs)
    return caught.value.errors


# ---------------------------------------------------------------------- 2: 5xx from bad input


@pytest.mark.parametrize(
    "body",
    [{"os": "ios", "event": [], "version": "1"}, {"os": {}, "event": "CONTACT_NOTIFICATION"},
     {"os": "ios", "event": {"a": 1}}, {"os": ["ios"], "event": ["x"], "version": []}],
)  # fmt: skip
def test_metrics_with_unhashable_names_are_refused(body: dict[str, Any]) -> None:
    assert _errors(model.parse_metric, body, DEFAULT_METRICS_INTERVALS)


@pytest.mark.parametrize("test_type", [{}, [], ["confirmed"]])
def test_a_test_type_that_is_not_text_is_refused(test_type: Any) -> None:
    body = {"phone": "+64210123456", "symptomOnset": TODAY.isoformat(), "testType": test_type}
    errors = _errors(model.parse_code_request, body, today=TODAY, max_onset_age_days=28)
    assert "TestType" in errors


@pytest.mark.parametrize("since", ["²", "٣", "1\n", "１"])
def test_a_since_of_lookalike_digits_is_refused(since: str) -> None:
    assert "Since" in _errors(files._parse_int, {"since": since}, "since", "Since", 0)


# ---------------------------------------------------------------------- 7: control characters


@pytest.mark.parametrize(
    ("body", "key"),
    [({"phone": "+64210123456\n", "symptomOnset": TODAY.isoformat()}, "Phone"),
     ({"phone": "+٦٤٢١٠١٢٣٤٥٦", "symptomOnset": TODAY.isoformat()}, "Phone"),
     ({"phone": "+64210123456", "symptomOnset": "٢٠٢١-١٠-٠٤"}, "SymptomOnset")],
)  # fmt: skip
def test_phones_and_dates_are_anchored_and_ascii(body: dict[str, Any], key: str) -> None:
    assert key in _errors(model.parse_code_request, body, today=TODAY, max_onset_age_days=28)


@pytest.mark.parametrize(
    ("body", "key"),
    [({"phone": "+64210123456", "firstName": "Aroha\u0000"}, "FirstName"),
     ({"phone": "+64210123456", "contactNotes": "after 5\u0007"}, "ContactNotes"),
     ({"phone": "+64210123456\n"}, "Phone")],
)  # fmt: skip
def test_control_characters_in_a_callback_are_refused(body: dict[str, Any], key: str) -> None:
    assert key in _errors(model.parse_callback, body)


def test_a_nonce_with_a_trailing_newline_is_refused() -> None:
    body = {"nonce": "a" * 64 + "\n", "platform": "test", "deviceVerificationPayload": "ok"}
    assert "Nonce" in _errors(model.parse_registration, body, model.PLATFORMS)


# ---------------------------------------------------------------------- the plugin's metrics


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("CONTACT_NOTIFICATION", {"version": 2, "riskScore": 15}),
        ("DAILY_ACTIVE_TRACE", None),
        ("LOG_ERROR", {"description": "Failed to retrieve settings", "error": "decoding"}),
        ("CALLBACK_REQUEST", None),
    ],
)
def test_the_plugins_four_metrics_are_accepted(event: str, payload: dict[str, Any] | None) -> None:
    # CLIENTS.md: what the plugin sends, as it sends it (payload an object, or no payload).
    body: dict[str, Any] = {"os": "android", "event": event, "version": "8.0.0"}
    if payload is not None:
        body["payload"] = payload
    parsed = model.parse_metric(body, DEFAULT_METRICS_INTERVALS)
    assert (parsed.event, parsed.os, parsed.version) == (event, "android", "8.0.0")


# ---------------------------------------------------------------------- bearer tokens


@pytest.fixture
def deps(enf_environ: dict[str, str]) -> service.Deps:
    """The production wiring with every secret and partner replaced by an in-memory value;
    the database is unreachable, so a use case that got past the token would fail loudly."""
    settings = EnfSettings.from_env({**enf_environ, "DATABASE_URL": UNREACHABLE})
    defaults = {
        kind: client_config_store.checked(kind, client_config_store.packaged(kind), kind)
        for kind in (EXPOSURE, NOTIFICATION)
    }
    documents = ClientDocuments({EXPOSURE: None, NOTIFICATION: None}, defaults, 60)
    production = wiring.deps_for(settings)
    return service.Deps(
        settings=settings,
        signing_key=lambda: "test-signing-key-of-thirty-two-bytes",
        code_hash_key=lambda: b"code-hash-key",
        ncts_api_key=lambda: "ncts",
        verifier=production.verifier,
        sms=production.sms,
        ncts=production.ncts,
        documents=documents,
        files=production.files,
    )


BEARER_ROUTES = [
    (service.verify_code, {"hash": model.app_code_hash("123456")}),
    (service.upload_keys, {}),
    (service.exposure_config, {}),
    (service.record_metric, {}),
    (service.request_callback, {}),
    (service.forget, {}),
    (service.refresh, {}),
    (service.list_files, {}),
    (service.read_file, {}),
]


@pytest.mark.parametrize(("use_case", "body"), BEARER_ROUTES)
@pytest.mark.parametrize("token", [None, "", "forged.token.here"])
def test_use_cases_that_need_a_bearer_refuse_a_missing_or_forged_one(
    deps: service.Deps, use_case: Any, body: dict[str, Any], token: str | None
) -> None:
    request = ApiRequest(body=body, bearer=token, path="exposures/1-2-00001.zip")
    with pytest.raises(Unauthorized):
        use_case(deps, request, NOW)
