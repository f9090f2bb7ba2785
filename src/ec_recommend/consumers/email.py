"""Sending email through SES (aiobotocore; moto's server locally)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend.consumers.templates import Email
from ec_recommend.platform.aws import open_aws_client

log = logging.getLogger(__name__)


class EmailNotSent(RuntimeError):
    """SES refused or could not be reached; the event is retried, then dead-lettered."""


class EmailSender:
    def __init__(self, ses: Any, sender: str) -> None:
        self._ses = ses
        self.sender = sender

    async def send(self, email: Email) -> str:
        """Send one message; returns the SES message id."""
        try:
            response = await self._ses.send_email(
                Source=self.sender,
                Destination={"ToAddresses": [email.to]},
                Message={
                    "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": email.body, "Charset": "UTF-8"}},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise EmailNotSent(f"SES did not send to {email.to}: {exc}") from exc
        message_id = str(response["MessageId"])
        log.info("email %r sent to %s (%s)", email.subject, email.to, message_id)
        return message_id


@asynccontextmanager
async def open_email_sender(
    *,
    sender: str,
    region: str,
    endpoint_url: str | None = None,
    verify_sender: bool = False,
) -> AsyncIterator[EmailSender]:
    """An SES client for ``sender``.

    ``verify_sender`` (local profile) registers the sender identity first, as
    SES — and moto — refuse mail from an unverified address. In production the
    identity is verified once by an operator, not by every process.
    """
    async with open_aws_client("ses", region=region, endpoint_url=endpoint_url) as ses:
        if verify_sender:
            await ses.verify_email_identity(EmailAddress=sender)
        yield EmailSender(ses, sender)
