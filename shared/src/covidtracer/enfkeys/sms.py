"""Texting upload codes: a Twilio-style HTTP API, or AWS End User Messaging SMS.

Settings choose the adapter (``SMS_PROVIDER``). Either way an outage becomes
``Unavailable("sms")`` (503: the caller, NCTS, retries), and a number the provider refuses
(Twilio's 400, AWS's ``ValidationException``) a ``ValidationError`` on ``Phone`` (400: a
retry cannot help). In both cases the code is rolled back, so no unsent code stays valid.
Neither the phone number nor the text is logged.
"""

from __future__ import annotations

from typing import Protocol

from covidtracer import aws, outbound
from covidtracer.enfkeys.settings import SmsSettings
from covidtracer.errors import Unavailable, ValidationError
from covidtracer.logs import get_logger

log = get_logger(__name__)

PHONE_REFUSED = "The SMS provider does not accept this phone number."


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None:
        """Send ``text`` to ``phone``; raises ``Unavailable`` if it was not accepted."""


class TwilioSms:
    """Twilio's Messages API (``POST /2010-04-01/Accounts/{sid}/Messages.json``, form body)."""

    def __init__(self, settings: SmsSettings) -> None:
        self._settings = settings

    def send(self, phone: str, text: str) -> None:
        sid = self._settings.account_sid or ""
        token = aws.secret_string(self._settings.auth_token_secret_id or "")
        response = outbound.post(
            f"{self._settings.base_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json",
            dependency="sms",
            timeout=self._settings.timeout_seconds,
            data={"To": phone, "From": self._settings.sender, "Body": text},
            auth=(sid, token),
        )
        if response.status_code == 400:
            log.warning("sms refused the number", extra={"status": response.status_code})
            raise ValidationError.of("Phone", PHONE_REFUSED)
        if response.status_code not in (200, 201):
            log.error("sms refused", extra={"status": response.status_code})
            raise Unavailable("sms")


class AwsSms:
    """AWS End User Messaging SMS (``pinpoint-sms-voice-v2`` ``SendTextMessage``)."""

    def __init__(self, settings: SmsSettings) -> None:
        self._settings = settings

    def send(self, phone: str, text: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            aws.client("pinpoint-sms-voice-v2").send_text_message(
                DestinationPhoneNumber=phone,
                OriginationIdentity=self._settings.sender,
                MessageBody=text,
                MessageType="TRANSACTIONAL",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ValidationException":
                log.warning("sms refused the number", extra={"error_type": "ValidationException"})
                raise ValidationError.of("Phone", PHONE_REFUSED) from exc
            log.error("sms refused", extra={"error_type": type(exc).__name__})
            raise Unavailable("sms") from exc
        except BotoCoreError as exc:
            log.error("sms refused", extra={"error_type": type(exc).__name__})
            raise Unavailable("sms") from exc


def sender_for(settings: SmsSettings) -> SmsSender:
    return AwsSms(settings) if settings.provider == "aws" else TwilioSms(settings)
