"""Notification subscriber: real SES (moto's server), real user service, both engines."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager

import pytest
import sqlalchemy as sa

from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.config import Config
from ec_recommend.consumers import notification
from ec_recommend.consumers.email import EmailNotSent, EmailSender, open_email_sender
from ec_recommend.consumers.recipients import Recipients
from ec_recommend.platform.events.handling import handle_batch
from ec_recommend.platform.events.inbox import ensure_inbox
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.local_aws import LocalAws
from tests.conftest import ServicesFactory
from tests.integration.consumers.conftest import apply, event, order, sent_emails
from tests.integration.statement_count import statements_on

pytestmark = pytest.mark.asyncio


def _address(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


def _shop_sender(local_aws: LocalAws) -> AbstractAsyncContextManager[EmailSender]:
    """A sender from a verified shop address, on moto's SES."""
    return open_email_sender(
        sender=_address("shop"),
        region=local_aws.region,
        endpoint_url=local_aws.endpoint_url,
        verify_sender=True,
    )


async def test_each_email_is_sent_once(
    config: Config, services: ServicesFactory, local_aws: LocalAws
) -> None:
    customer_email = _address("customer")
    async with (
        services("user") as hosted,
        open_database(config.storage, "notification", notification.MIGRATIONS) as db,
        _shop_sender(local_aws) as sender,
    ):
        users = hosted.clients.stub(pb_user.UserServiceStub, "user")
        user = await users.create_user(
            pb_user.CreateUserRequest(cognito_user_id=str(uuid.uuid4()), email=customer_email)
        )
        handlers = notification.Notifier(sender, Recipients(users)).handlers()
        placed = order([(str(uuid.uuid4()), "s", 2, 1500)], user_id=user.id, paid=True)
        welcome = event(
            "user.created",
            pb_events.UserCreated(user_id=user.id, email=customer_email, display_name="花子"),
        )
        paid = event("order.paid", pb_events.OrderPaid(order=placed, payment_id="p"))
        shipped = event("order.shipped", pb_events.OrderShipped(order=placed))
        for evt in (welcome, paid, paid, shipped, shipped):
            await apply(db, handlers[evt.type], evt)

        mails = await sent_emails(local_aws.endpoint_url, customer_email)
        subjects = sorted(m["subject"] for m in mails)
        assert len(subjects) == 3, subjects
        confirmation = next(m for m in mails if "Order confirmed" in m["subject"])
        assert placed.order_number in confirmation["body"]
        assert "¥3,000" in confirmation["body"]
        assert any("花子" in m["body"] for m in mails)


async def test_failed_send_raises_and_records_nothing(
    config: Config, services: ServicesFactory, local_aws: LocalAws
) -> None:
    async with (
        services("user") as hosted,
        open_database(config.storage, "notification", notification.MIGRATIONS) as db,
        # SES refuses mail from a sender that was never verified.
        open_email_sender(
            sender=_address("unverified"),
            region=local_aws.region,
            endpoint_url=local_aws.endpoint_url,
        ) as sender,
    ):
        users = hosted.clients.stub(pb_user.UserServiceStub, "user")
        handlers = notification.Notifier(sender, Recipients(users)).handlers()
        to = _address("customer")
        welcome = event("user.created", pb_events.UserCreated(user_id="u1", email=to))
        with pytest.raises(EmailNotSent):
            await apply(db, handlers["user.created"], welcome)
        async with db.reading() as conn:
            rows = (await conn.execute(sa.select(notification.sent_emails))).all()
        assert rows == []
        assert await sent_emails(local_aws.endpoint_url, to) == []


async def test_order_email_of_an_unknown_user_is_skipped(
    config: Config, services: ServicesFactory, local_aws: LocalAws
) -> None:
    async with (
        services("user") as hosted,
        open_database(config.storage, "notification", notification.MIGRATIONS) as db,
        _shop_sender(local_aws) as sender,
    ):
        users = hosted.clients.stub(pb_user.UserServiceStub, "user")
        handlers = notification.Notifier(sender, Recipients(users)).handlers()
        placed = order([(str(uuid.uuid4()), "s", 1, 100)], paid=True)
        paid = event("order.paid", pb_events.OrderPaid(order=placed))
        await apply(db, handlers["order.paid"], paid)
        async with db.reading() as conn:
            assert (await conn.execute(sa.select(notification.sent_emails))).all() == []


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_a_batch_checks_and_records_its_emails_in_one_statement_each(
    config: Config, services: ServicesFactory, local_aws: LocalAws
) -> None:
    async with (
        services("user") as hosted,
        open_database(config.storage, notification.DATABASE, notification.MIGRATIONS) as db,
        _shop_sender(local_aws) as sender,
    ):
        await ensure_inbox(db)
        users = hosted.clients.stub(pb_user.UserServiceStub, "user")
        handlers = notification.Notifier(sender, Recipients(users)).handlers()
        addresses = [_address(f"customer{n}") for n in range(4)]
        paid = []
        for to in addresses:
            user = await users.create_user(
                pb_user.CreateUserRequest(cognito_user_id=str(uuid.uuid4()), email=to)
            )
            placed = order([(str(uuid.uuid4()), "s", 1, 100)], user_id=user.id, paid=True)
            paid.append(event("order.paid", pb_events.OrderPaid(order=placed, payment_id="p")))

        # The first batch sends four emails: the inbox's claim and effect marks,
        # one read of the four keys, one write of the four sent (not a read and
        # a write per email), and the four customers' addresses in one read of
        # the user database (one GetUsers, not a GetUser each). The same orders
        # paid under other event ids: the read finds every key sent, so nothing
        # is looked up, sent or written again.
        again = [event("order.paid", evt.data) for evt in paid]
        for batch, inserts, user_reads in ((paid, 3, 1), (again, 2, 0)):
            with (
                statements_on(config.storage, notification.DATABASE) as seen,
                statements_on(config.storage, "user") as looked_up,
            ):
                outcomes = await handle_batch(db, "notification", handlers, batch)
            assert [o.status for o in outcomes] == ["handled"] * 4
            assert (seen["SELECT"], seen["INSERT"]) == (1, inserts), dict(seen)
            assert looked_up["SELECT"] == user_reads, dict(looked_up)
            for to in addresses:
                assert len(await sent_emails(local_aws.endpoint_url, to)) == 1
