"""Sends close together share one SendBulkTemplatedEmail; each caller gets its own outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from ec_recommend.consumers.email import (
    MAX_RECIPIENTS,
    PASSTHROUGH_TEMPLATE,
    EmailNotSent,
    EmailSender,
)
from ec_recommend.consumers.templates import Email

pytestmark = pytest.mark.asyncio


class RecordingSes:
    """SES's bulk call as the sender sees it: a status per destination, in order."""

    def __init__(self, refuse: set[str] | None = None, fail_call: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.refuse = refuse or set()
        self.fail_call = fail_call

    async def send_bulk_templated_email(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if self.fail_call:
            error = {"Error": {"Code": "MessageRejected", "Message": "not verified"}}
            raise ClientError(error, "SendBulkTemplatedEmail")
        statuses = []
        for n, destination in enumerate(request["Destinations"]):
            [to] = destination["Destination"]["ToAddresses"]
            if to in self.refuse:
                statuses.append({"Status": "MessageRejected", "Error": "address refused"})
            else:
                statuses.append({"Status": "Success", "MessageId": f"id-{len(self.calls)}-{n}"})
        return {"Status": statuses}


def mail(n: int) -> Email:
    return Email(to=f"user{n}@example.com", subject=f"件名 {n}", body=f"本文 ¥{n},000")


async def test_concurrent_sends_leave_in_one_call_through_the_template() -> None:
    ses = RecordingSes()
    sender = EmailSender(ses, "shop@example.com")
    ids = await asyncio.gather(*(sender.send(mail(n)) for n in range(3)))
    assert ids == ["id-1-0", "id-1-1", "id-1-2"]
    [call] = ses.calls
    assert call["Template"] == PASSTHROUGH_TEMPLATE and call["Source"] == "shop@example.com"
    data = [orjson.loads(d["ReplacementTemplateData"]) for d in call["Destinations"]]
    assert data[1] == {"subject": "件名 1", "body": "本文 ¥1,000"}


async def test_a_refused_recipient_fails_alone() -> None:
    ses = RecordingSes(refuse={"user1@example.com"})
    sender = EmailSender(ses, "shop@example.com")
    outcomes = await asyncio.gather(
        *(sender.send(mail(n)) for n in range(3)), return_exceptions=True
    )
    assert outcomes[0] == "id-1-0" and outcomes[2] == "id-1-2"
    assert isinstance(outcomes[1], EmailNotSent) and "user1@" in str(outcomes[1])


async def test_a_refused_call_fails_every_caller() -> None:
    sender = EmailSender(RecordingSes(fail_call=True), "nobody@example.com")
    outcomes = await asyncio.gather(
        *(sender.send(mail(n)) for n in range(2)), return_exceptions=True
    )
    assert all(isinstance(o, EmailNotSent) for o in outcomes)


async def test_a_full_call_leaves_without_waiting_and_the_rest_follows() -> None:
    ses = RecordingSes()
    sender = EmailSender(ses, "shop@example.com", window=3600.0)
    first = [asyncio.ensure_future(sender.send(mail(n))) for n in range(MAX_RECIPIENTS + 1)]
    await asyncio.wait_for(asyncio.gather(*first[:MAX_RECIPIENTS]), timeout=5)
    assert [len(c["Destinations"]) for c in ses.calls] == [MAX_RECIPIENTS]
    await sender.drain()  # what a closing sender does: the last one leaves too
    assert await first[-1] == "id-2-0"


async def test_a_cancelled_caller_does_not_cancel_the_send() -> None:
    ses = RecordingSes()
    sender = EmailSender(ses, "shop@example.com", window=3600.0)
    waiting = asyncio.ensure_future(sender.send(mail(1)))
    await asyncio.sleep(0)
    waiting.cancel()
    await sender.drain()
    assert len(ses.calls) == 1


async def test_the_consumers_of_a_process_share_one_sender_and_its_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from ec_recommend.config import Config
    from ec_recommend.consumers import notification
    from ec_recommend.consumers.seller import consumer as seller
    from ec_recommend.runtime.registry import ServiceEnv

    ses = RecordingSes()
    opened: list[EmailSender] = []

    @asynccontextmanager
    async def recording_sender(config: Config) -> AsyncIterator[EmailSender]:
        opened.append(EmailSender(ses, "shop@example.com"))
        yield opened[-1]

    for module in (notification, seller):
        monkeypatch.setattr(module, "configured_email_sender", recording_sender)

    class NoClients:
        def stub(self, stub_type: type, service: str) -> None:
            return None

    env = ServiceEnv(config=Config(), clients=NoClients())  # type: ignore[arg-type]
    async with notification.subscription(env) as customers, seller.subscription(env) as sellers:
        senders = {
            handler.effect.__self__.sender  # type: ignore[union-attr]
            for subscription in (customers, sellers)
            for handler in subscription.handlers.values()
            if handler.effect is not None
        }
        assert senders == set(opened) and len(opened) == 1
        # the customer's confirmation and the seller's notice of one order
        [shared] = senders
        await asyncio.gather(shared.send(mail(1)), shared.send(mail(2)))
    assert len(ses.calls) == 1
