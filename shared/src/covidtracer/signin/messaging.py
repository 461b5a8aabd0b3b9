"""Outbound adapters of the triggers: the code email (SES, in its own region) and the
post-authentication queue (SQS). botocore errors become ``Unavailable``."""

from __future__ import annotations

from typing import Any, Protocol

from covidtracer import aws
from covidtracer.errors import Unavailable
from covidtracer.signin.events import PostAuthenticationMessage
from covidtracer.signin.model import code_email


class CodeMailer(Protocol):
    def send_code(self, to: str, code: str) -> None: ...


class PostAuthenticationQueue(Protocol):
    def publish(self, message: PostAuthenticationMessage) -> None: ...


class SesCodeMailer:
    """Sends the sign-in code from ``sender`` through SES (plain text and HTML), with
    ``client`` if given (the local Cognito driver signs as the auth role), else ``aws.ses()``."""

    def __init__(self, sender: str, client: Any | None = None) -> None:
        self._sender = sender
        self._client = client

    def send_code(self, to: str, code: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        subject, text, html = code_email(code)
        try:
            (self._client or aws.ses()).send_email(
                Source=self._sender,
                Destination={"ToAddresses": [to]},
                Message={
                    "Subject": {"Data": subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": text, "Charset": "UTF-8"},
                        "Html": {"Data": html, "Charset": "UTF-8"},
                    },
                },
            )
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable("ses") from exc


class SqsPostAuthenticationQueue:
    """The post-authentication queue, through ``client`` if given, else ``aws.sqs()``."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self._queue_url = queue_url
        self._client = client

    def publish(self, message: PostAuthenticationMessage) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            (self._client or aws.sqs()).send_message(
                QueueUrl=self._queue_url, MessageBody=message.to_json()
            )
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable("sqs") from exc
