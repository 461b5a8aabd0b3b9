"""Texting upload codes: a Twilio-style HTTP API, or AWS End User Messaging SMS.

Settings choose the adapter (``SMS_PROVIDER``). Either way a refusal or an outage becomes
``Unavailable("sms")`` so the caller (NCTS) retries and no unsent code stays valid. Neither
the phone number nor the text is logged.
"""

from __future__ import annotations

from typing import Protocol

from covidtracer import aws
from covidtracer.enf import outbound
from covidtracer.errors import Unavailable
from covidtracer.logs import get_logger
from covidtracer.settings import SmsSettings

log = get_logger(__name__)


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
        except (BotoCoreError, ClientError) as exc:
            log.error("sms refused", extra={"error_type": type(exc).__name__})
            raise Unavailable("sms") from exc


def sender_for(settings: SmsSettings) -> SmsSender:
    return AwsSms(settings) if settings.provider == "aws" else TwilioSms(settings)
