"""Sending email through SES (aiobotocore; moto's server locally).

Sends that arrive within ``BATCH_WINDOW`` of each other leave as one
``SendBulkTemplatedEmail`` call (up to 50 recipients): the effects of one
received batch of events each send their own email, and one call per message
was half of the broker calls of an order. The consumers of a process share
one sender (``ServiceEnv.email_sender``), so the seller's notice and the
customer's confirmation of the same orders, received by two consumers at
about the same time, share a call too. SES sends bulk mail only from a
stored template, so the messages go through one pass-through template whose
subject and text are the whole of each recipient's data; every message is
still composed here (``templates``). Each caller gets its own message id, or
its own ``EmailNotSent`` when SES refused that recipient.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend.consumers.templates import Email
from ec_recommend.platform.aws import open_aws_client

log = logging.getLogger(__name__)

PASSTHROUGH_TEMPLATE = "ec-recommend-message"
"""The stored template every message is sent through: subject and text are
the recipient's data as composed. SES does not escape template data, and the
text part is plain text, so nothing is lost or added on the way."""
# What `provision` stores, and the CloudFormation template declares.
PASSTHROUGH_TEMPLATE_CONTENT = {
    "TemplateName": PASSTHROUGH_TEMPLATE,
    "SubjectPart": "{{subject}}",
    "TextPart": "{{body}}",
}

MAX_RECIPIENTS = 50  # SendBulkTemplatedEmail's limit per call
# How long a first send waits for others to share its call: long enough for
# the other consumer's batch of the same orders (5 ms caught only one's),
# nothing beside the seconds an email takes to arrive.
BATCH_WINDOW = 0.05


class EmailNotSent(RuntimeError):
    """SES refused or could not be reached; the event is retried, then dead-lettered."""


_Pending = tuple[Email, "asyncio.Future[str]"]


class EmailSender:
    def __init__(self, ses: Any, sender: str, *, window: float = BATCH_WINDOW) -> None:
        self._ses = ses
        self.sender = sender
        self._window = window
        self._pending: list[_Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def send(self, email: Email) -> str:
        """Send one message (sharing a bulk call with others); returns its SES message id."""
        loop = asyncio.get_running_loop()
        sent: asyncio.Future[str] = loop.create_future()
        self._pending.append((email, sent))
        if len(self._pending) >= MAX_RECIPIENTS:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._window, self._flush)
        # A cancelled caller does not call the send off: delivery is at least once.
        return await asyncio.shield(sent)

    async def drain(self) -> None:
        """Send what is waiting and wait for every call in flight."""
        self._flush()
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._send_bulk(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _send_bulk(self, batch: list[_Pending]) -> None:
        try:
            response = await self._ses.send_bulk_templated_email(
                Source=self.sender,
                Template=PASSTHROUGH_TEMPLATE,
                DefaultTemplateData="{}",
                Destinations=[
                    {
                        "Destination": {"ToAddresses": [email.to]},
                        "ReplacementTemplateData": orjson.dumps(
                            {"subject": email.subject, "body": email.body}
                        ).decode(),
                    }
                    for email, _ in batch
                ],
            )
            statuses = response["Status"]
        except (ClientError, BotoCoreError, KeyError) as exc:
            for email, sent in batch:
                _settle(sent, error=EmailNotSent(f"SES did not send to {email.to}: {exc}"))
            return
        except BaseException as exc:  # cancelled or a bug: no caller may wait forever
            for _, sent in batch:
                _settle(sent, error=EmailNotSent(f"SES call did not complete: {exc!r}"))
            raise
        for (email, sent), status in zip(batch, statuses, strict=False):
            message_id = status.get("MessageId")
            if status.get("Status", "Success") == "Success" and message_id:
                log.info("email %r sent to %s (%s)", email.subject, email.to, message_id)
                _settle(sent, result=str(message_id))
            else:
                reason = status.get("Error") or status.get("Status")
                _settle(sent, error=EmailNotSent(f"SES did not send to {email.to}: {reason}"))
        for email, sent in batch[len(statuses) :]:
            _settle(sent, error=EmailNotSent(f"SES gave no status for {email.to}"))


def _settle(
    sent: asyncio.Future[str], *, result: str | None = None, error: Exception | None = None
) -> None:
    if sent.done():
        return
    if error is not None:
        sent.set_exception(error)
    else:
        sent.set_result(result or "")


async def prepare_sending(ses: Any, sender: str) -> None:
    """Verify ``sender`` and store the pass-through template (idempotent).

    A fresh moto knows neither. In production ``ec-recommend provision`` (or
    the CloudFormation template) stores the template and an operator verifies
    the identity once.
    """
    await ses.verify_email_identity(EmailAddress=sender)
    await store_template(ses)


async def store_template(ses: Any) -> bool:
    """Store the pass-through template; False if it was there already."""
    try:
        await ses.create_template(Template=PASSTHROUGH_TEMPLATE_CONTENT)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "AlreadyExists":
            return False
        raise
    return True


@asynccontextmanager
async def open_email_sender(
    *,
    sender: str,
    region: str,
    endpoint_url: str | None = None,
    verify_sender: bool = False,
) -> AsyncIterator[EmailSender]:
    """An SES client for ``sender``.

    ``verify_sender`` (local profile) verifies the sender and stores the
    template first (``prepare_sending``). On exit, sends already accepted
    still leave.
    """
    async with open_aws_client("ses", region=region, endpoint_url=endpoint_url) as ses:
        if verify_sender:
            await prepare_sending(ses, sender)
        email_sender = EmailSender(ses, sender)
        try:
            yield email_sender
        finally:
            await email_sender.drain()
