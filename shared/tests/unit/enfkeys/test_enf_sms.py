"""The AWS End User Messaging SMS adapter sends the request shape the API expects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.stub import Stubber

from covidtracer import aws, settings
from covidtracer.enfkeys.settings import SmsSettings
from covidtracer.enfkeys.sms import AwsSms, TwilioSms, sender_for
from covidtracer.errors import Unavailable

SMS = SmsSettings(
    provider="aws",
    base_url="https://api.twilio.com",
    account_sid=None,
    auth_token_secret_id=None,
    sender="NZCOVID",
    timeout_seconds=5,
    message_template="code {code}",
)


@pytest.fixture
def sms_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    for name, value in {
        "AWS_REGION": "ap-southeast-2",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    settings.reset()
    aws.reset()
    with Stubber(aws.client("pinpoint-sms-voice-v2")) as stubber:
        yield stubber
    aws.reset()
    settings.reset()


def test_settings_choose_the_adapter() -> None:
    assert isinstance(sender_for(SMS), AwsSms)
    assert isinstance(sender_for(SmsSettings(**{**SMS.__dict__, "provider": "twilio"})), TwilioSms)


def test_a_code_goes_out_as_a_transactional_text(sms_client: Stubber) -> None:
    sms_client.add_response(
        "send_text_message",
        {"MessageId": "m-1"},
        {
            "DestinationPhoneNumber": "+64210123456",
            "OriginationIdentity": "NZCOVID",
            "MessageBody": "code 123456",
            "MessageType": "TRANSACTIONAL",
        },
    )
    AwsSms(SMS).send("+64210123456", "code 123456")
    sms_client.assert_no_pending_responses()


def test_a_refusal_is_unavailable(sms_client: Stubber) -> None:
    sms_client.add_client_error("send_text_message", "ThrottlingException", http_status_code=429)
    with pytest.raises(Unavailable):
        AwsSms(SMS).send("+64210123456", "code 123456")


def test_a_number_the_provider_refuses_is_a_validation_error_not_an_outage(
    sms_client: Stubber,
) -> None:
    from covidtracer.errors import ValidationError

    sms_client.add_client_error("send_text_message", "ValidationException", http_status_code=400)
    with pytest.raises(ValidationError) as caught:
        AwsSms(SMS).send("+64210123456", "code 123456")
    assert list(caught.value.errors) == ["Phone"]
