"""The NCTS and FCM adapters over real HTTP against the partner stand-ins."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import replace

import pytest

from covidtracer import aws, fcm, ncts
from covidtracer.contactdetails.settings import details_settings
from covidtracer.errors import Unavailable
from tracerstack.pytest_plugin import Partners


def _code(partners: Partners) -> str:
    request = urllib.request.Request(f"{partners.url}/consent-codes", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["consentCode"])


def _ncts(sleeps: list[float]) -> ncts.NctsClient:
    return ncts.NctsClient(details_settings().partners, sleep=sleeps.append)


def test_a_5xx_is_retried_with_backoff_then_unavailable(
    service_env: dict[str, str], outbox: Partners
) -> None:
    sleeps: list[float] = []
    outbox.outage("ncts", 503)
    with pytest.raises(Unavailable):
        _ncts(sleeps).send_callback_request({"eventId": "e"})
    assert sleeps == [0.2, 0.4]
    assert outbox.outbox() == []


def test_a_4xx_is_not_retried(service_env: dict[str, str], outbox: Partners) -> None:
    sleeps: list[float] = []
    with pytest.raises(ncts.ConsentCodeRejected):
        _ncts(sleeps).send_location_history("ZZZZZZ", [])
    assert sleeps == []


def test_an_unreachable_ncts_is_unavailable_after_the_retries(
    service_env: dict[str, str],
) -> None:
    from tracerstack.pytest_plugin import free_port

    partner = replace(details_settings().partners, ncts_base_url=f"http://127.0.0.1:{free_port()}")
    sleeps: list[float] = []
    with pytest.raises(Unavailable):
        ncts.NctsClient(partner, sleep=sleeps.append).send_callback_request({})
    assert len(sleeps) == partner.ncts_retries


def test_a_diary_with_an_issued_code_is_delivered(
    service_env: dict[str, str], outbox: Partners
) -> None:
    code = _code(outbox)
    _ncts([]).send_location_history(code, [{"gln": "", "entryType": 1}])
    (sent,) = outbox.outbox()
    assert json.loads(sent["body"]) == {
        "consentCode": code,
        "locations": [{"gln": "", "entryType": 1}],
    }


def test_fcm_grants_a_token_once_and_reuses_it(
    service_env: dict[str, str], outbox: Partners
) -> None:
    client = fcm.FcmClient(
        details_settings().fcm,
        lambda: json.loads(aws.secret_string(service_env["FCM_SERVICE_ACCOUNT_SECRET_ID"])),
    )
    message = {"message": {"topic": "all", "data": {"type": "t", "payload": "[]"}}}
    client.send(message)
    first = outbox.server.state.access_tokens.copy()
    client.send(message)
    assert outbox.server.state.access_tokens == first  # no second grant
    pushes = [json.loads(i["body"]) for i in outbox.outbox() if i["channel"] == "push"]
    assert pushes == [message, message]
    # A token FCM no longer accepts is replaced once, transparently.
    outbox.server.state.access_tokens.clear()
    client.send(message)
    assert len(outbox.server.state.access_tokens) == 1


def test_fcm_down_is_unavailable(service_env: dict[str, str], outbox: Partners) -> None:
    outbox.outage("fcm", 500)
    with pytest.raises(Unavailable):
        fcm.client(details_settings().fcm).send({"message": {"topic": "all"}})


@pytest.mark.parametrize("status", [400, 422])
def test_a_request_ncts_refuses_is_a_validation_error_not_an_outage(
    service_env: dict[str, str], outbox: Partners, status: int
) -> None:
    outbox.outage("ncts", status)
    sleeps: list[float] = []
    with pytest.raises(ncts.RequestRefused) as caught:
        _ncts(sleeps).send_callback_request({"eventId": "e"})
    assert caught.value.status == 400 and sleeps == []  # refused once, never retried
