"""The partner stand-ins answer like the real services and record what they receive."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tracerstack.bootstrap import Bootstrap
from tracerstack.pytest_plugin import Partners, http


def _post(
    url: str, body: Any, form: bool = False, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    data = urllib.parse.urlencode(body).encode() if form else json.dumps(body).encode()
    answer = http("POST", url, data=data, headers={"Content-Type": content_type, **(headers or {})})
    return answer.status, answer.json()


def test_ncts_accepts_a_diary_only_with_a_consent_code_it_issued(outbox: Partners) -> None:
    status, issued = _post(f"{outbox.url}/consent-codes", {})
    assert status == 201 and len(issued["consentCode"]) == 6
    assert _post(f"{outbox.url}/location-history", {"consentCode": "ZZZZZZ"}) == (
        400,
        {"error": "invalid_consent_code"},
    )
    assert (
        _post(
            f"{outbox.url}/location-history",
            {"consentCode": issued["consentCode"], "locations": []},
        )[0]
        == 204
    )
    (item,) = outbox.outbox()
    assert (item["channel"], item["to"]) == ("ncts", "location-history")
    assert json.loads(item["body"])["consentCode"] == issued["consentCode"]


def test_sms_and_push_land_in_the_outbox_oldest_first(outbox: Partners) -> None:
    status, sent = _post(
        f"{outbox.url}/sms/2010-04-01/Accounts/AC1/Messages.json",
        {"To": "+64211234567", "From": "NZCOVID", "Body": "Your code is 123456"},
        form=True,
    )
    assert status == 201 and sent["sid"].startswith("SM")
    message = {"message": {"topic": "all", "data": {"type": "exposure-event-notifications"}}}
    assert (
        _post(f"{outbox.url}/fcm/v1/projects/p1/messages:send", message, headers=_fcm_auth(outbox))[
            0
        ]
        == 200
    )
    sms, push = outbox.outbox()
    assert (sms["channel"], sms["to"], sms["body"]) == (
        "sms",
        "+64211234567",
        "Your code is 123456",
    )
    assert (push["channel"], push["to"]) == ("push", "all")
    assert json.loads(push["body"]) == message
    assert sms["at"] <= push["at"]


def test_emails_sent_through_moto_ses_appear_in_the_outbox(
    outbox: Partners, aws_stack: Bootstrap
) -> None:
    ses = aws_stack.client("ses", aws_stack.ses_region)
    ses.send_email(
        Source=aws_stack.outputs["SenderAddress"],
        Destination={"ToAddresses": ["aroha@example.nz"]},
        Message={
            "Subject": {"Data": "Your code"},
            "Body": {"Text": {"Data": "Code 654321"}, "Html": {"Data": "<b>654321</b>"}},
        },
    )
    emails = [item for item in outbox.outbox() if item["channel"] == "email"]
    assert [(e["to"], e["subject"]) for e in emails] == [("aroha@example.nz", "Your code")]
    assert "654321" in emails[0]["body"]


def _fcm_auth(partners: Partners) -> dict[str, str]:
    grant = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "a.b.c"}
    status, token = _post(f"{partners.url}/oauth2/token", grant, form=True)
    assert status == 200
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_fcm_wants_a_token_from_a_jwt_bearer_grant(outbox: Partners) -> None:
    message = {"message": {"topic": "all", "data": {"type": "x"}}}
    send = f"{outbox.url}/fcm/v1/projects/p1/messages:send"
    assert _post(send, message)[0] == 401
    assert _post(send, message, headers={"Authorization": "Bearer forged"})[0] == 401
    bad_grant = {"grant_type": "client_credentials", "assertion": "a.b.c"}
    assert _post(f"{outbox.url}/oauth2/token", bad_grant, form=True) == (
        400,
        {"error": "invalid_grant"},
    )
    assert _post(send, message, headers=_fcm_auth(outbox))[0] == 200
    assert [item["channel"] for item in outbox.outbox()] == ["push"]


@pytest.mark.parametrize(
    ("partner", "path"),
    [
        ("ncts", "/callback-requests"),
        ("fcm", "/fcm/v1/projects/p/messages:send"),
    ],
)
def test_a_simulated_outage_fails_requests_until_it_is_lifted(
    outbox: Partners, partner: str, path: str
) -> None:
    headers = _fcm_auth(outbox)
    outbox.outage(partner, 503)
    assert _post(f"{outbox.url}{path}", {"message": {"topic": "all"}}, headers=headers)[0] == 503
    outbox.clear()
    assert _post(f"{outbox.url}{path}", {"message": {"topic": "all"}}, headers=headers)[0] in (
        200,
        202,
    )
