"""The notification subscriber (email-notification-queue): customer emails.

welcome (user.created), order confirmation (order.paid), shipped and
cancelled. Each email has a key (kind + user or order) recorded in the same
unit of work as the inbox row, so a redelivered or duplicated event never
sends twice. A failed send raises: nothing commits, the message comes back,
and after ``max_receive_count`` receives it is dead-lettered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import sqlalchemy as sa

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.consumers import templates
from ec_recommend.consumers._sql import insert_once
from ec_recommend.consumers.email import EmailSender
from ec_recommend.consumers.recipients import Recipients
from ec_recommend.consumers.settings import configured_email_sender
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.events.consumer import Handler, Subscription
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import Migration, UnitOfWork
from ec_recommend.platform.storage.database import create_tables
from ec_recommend.runtime.registry import ServiceEnv

QUEUE = "email-notification-queue"
DATABASE = "notification"

metadata = sa.MetaData()

sent_emails = sa.Table(
    "sent_emails",
    metadata,
    sa.Column("email_key", sa.String(200), primary_key=True),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("message_id", sa.String(200), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)

MIGRATIONS: Sequence[Migration] = (Migration(1, create_tables(metadata)),)


async def send_once(
    uow: UnitOfWork,
    sender: EmailSender,
    key: str,
    compose: Callable[[], Awaitable[templates.Email | None]],
) -> bool:
    """Send the email of ``key`` unless it was sent already; True if sent now.

    The key row is written before sending and commits only with the rest of
    the unit of work; if sending fails it rolls back with it. Writing it first
    also makes a concurrent duplicate (another event for the same email) wait
    on the key instead of sending too.
    """
    sent = sa.select(sent_emails.c.email_key).where(sent_emails.c.email_key == key)
    if (await uow.execute(sent)).first() is not None:
        return False
    email = await compose()
    if email is None:
        return False
    claimed = await insert_once(
        uow,
        sent_emails,
        sent_emails.c.email_key,
        email_key=key,
        recipient=email.to,
        subject=email.subject[:500],
        message_id="",
        sent_at=utcnow(),
    )
    if not claimed:
        return False
    message_id = await sender.send(email)
    await uow.execute(
        sa.update(sent_emails).where(sent_emails.c.email_key == key).values(message_id=message_id)
    )
    return True


class Notifier:
    def __init__(self, sender: EmailSender, recipients: Recipients) -> None:
        self.sender = sender
        self.recipients = recipients

    async def on_user_created(self, event: Event, uow: UnitOfWork) -> None:
        created = event.data
        assert isinstance(created, pb.UserCreated)

        async def compose() -> templates.Email | None:
            email = created.email or await self.recipients.user_email(created.user_id)
            return templates.welcome(email, created.display_name) if email else None

        await send_once(uow, self.sender, f"welcome:{created.user_id}", compose)

    async def on_order_paid(self, event: Event, uow: UnitOfWork) -> None:
        paid = event.data
        assert isinstance(paid, pb.OrderPaid) and paid.order is not None
        order = paid.order
        await self._email_customer(
            uow,
            f"order-confirmed:{order.id}",
            order,
            lambda to: templates.order_confirmed(to, order),
        )

    async def on_order_shipped(self, event: Event, uow: UnitOfWork) -> None:
        shipped = event.data
        assert isinstance(shipped, pb.OrderShipped) and shipped.order is not None
        order = shipped.order
        await self._email_customer(
            uow, f"order-shipped:{order.id}", order, lambda to: templates.order_shipped(to, order)
        )

    async def on_order_cancelled(self, event: Event, uow: UnitOfWork) -> None:
        cancelled = event.data
        assert isinstance(cancelled, pb.OrderCancelled) and cancelled.order is not None
        order = cancelled.order
        refunded = cancelled.refunded
        await self._email_customer(
            uow,
            f"order-cancelled:{order.id}",
            order,
            lambda to: templates.order_cancelled(to, order, refunded=refunded),
        )

    async def _email_customer(
        self,
        uow: UnitOfWork,
        key: str,
        order: pb_order.Order,
        template: Callable[[str], templates.Email],
    ) -> None:
        """Send the order's customer ``template`` once per ``key``; none without an address."""

        async def compose() -> templates.Email | None:
            email = await self.recipients.user_email(order.user_id)
            return template(email) if email else None

        await send_once(uow, self.sender, key, compose)

    def handlers(self) -> dict[str, Handler]:
        return {
            "user.created": self.on_user_created,
            "order.paid": self.on_order_paid,
            "order.shipped": self.on_order_shipped,
            "order.cancelled": self.on_order_cancelled,
        }


@asynccontextmanager
async def subscription(env: ServiceEnv) -> AsyncIterator[Subscription]:
    async with configured_email_sender(env.config) as sender:
        users = env.clients.stub(pb_user.UserServiceStub, "user")
        notifier = Notifier(sender, Recipients(users))
        yield Subscription(
            name="notification",
            queue=QUEUE,
            database=DATABASE,
            migrations=MIGRATIONS,
            handlers=notifier.handlers(),
        )
