"""The notification subscriber (email-notification-queue): customer emails.

welcome (user.created), order confirmation (order.paid), shipped and
cancelled. Sending is an effect, outside any transaction: it looks the
customer up (once per received batch), sends, then records the email's key
(kind + user or order) in ``sent_emails``. A key already recorded is never
sent again, and the effects of one batch share a key's send, one read of
their keys and one write of what they sent. SES has no
idempotency key, so delivery is at least once: a crash between SES accepting
the message and the key's commit, or two batches racing on one key, sends
twice. A failed send raises: the key stays unrecorded, the event comes back
and only its effect runs again; after ``max_receive_count`` receives it is
dead-lettered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import sqlalchemy as sa

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.consumers import templates
from ec_recommend.consumers.email import EmailSender
from ec_recommend.consumers.recipients import Recipients
from ec_recommend.consumers.settings import configured_email_sender
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.events.consumer import EffectScope, Handler, Subscription
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import Database, Migration, PerDialect, dialect_insert
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


# Built once, run with parameters (see ``platform.storage.statements``).
_SENT = sa.select(sent_emails.c.email_key).where(
    sent_emails.c.email_key.in_(sa.bindparam("email_keys", expanding=True))
)
_RECORD_SENT = PerDialect(
    lambda dialect: dialect_insert(dialect, sent_emails).on_conflict_do_nothing()
)


async def _already_sent(db: Database, keys: list[str]) -> list[bool]:
    """Whether each key's email was recorded as sent (one read for a batch's keys)."""
    rows = await db.rows(_SENT, {"email_keys": sorted(set(keys))})
    sent = {row.email_key for row in rows}
    return [key in sent for key in keys]


async def _record_sent(db: Database, rows: list[dict[str, Any]]) -> list[None]:
    """Record sent emails, a batch's in one statement (in key order: one lock order)."""
    await db.write(_RECORD_SENT(db.dialect), sorted(rows, key=lambda row: row["email_key"]))
    return [None] * len(rows)


async def send_once(
    scope: EffectScope,
    sender: EmailSender,
    key: str,
    compose: Callable[[], Awaitable[templates.Email | None]],
) -> bool:
    """Send the email of ``key`` unless it was sent already; True if sent now.

    The effects of a batch check their keys in one read and record what they
    sent in one write (``EffectScope.together``).
    """

    async def send() -> bool:
        if await scope.together("sent?", key, partial(_already_sent, scope.db)):
            return False
        email = await compose()
        if email is None:
            return False
        message_id = await sender.send(email)
        sent = {
            "email_key": key,
            "recipient": email.to,
            "subject": email.subject[:500],
            "message_id": message_id,
            "sent_at": utcnow(),
        }
        await scope.together("record sent", sent, partial(_record_sent, scope.db))
        return True

    # Two events of one batch that mean the same email send it once.
    return await scope.once(("email", key), send)


class Notifier:
    def __init__(self, sender: EmailSender, recipients: Recipients) -> None:
        self.sender = sender
        self.recipients = recipients

    async def on_user_created(self, event: Event, scope: EffectScope) -> None:
        created = event.data
        assert isinstance(created, pb.UserCreated)

        async def compose() -> templates.Email | None:
            email = created.email or await self.recipients.user_email(created.user_id, scope)
            return templates.welcome(email, created.display_name) if email else None

        await send_once(scope, self.sender, f"welcome:{created.user_id}", compose)

    async def on_order_paid(self, event: Event, scope: EffectScope) -> None:
        paid = event.data
        assert isinstance(paid, pb.OrderPaid) and paid.order is not None
        order = paid.order
        await self._email_customer(
            scope,
            f"order-confirmed:{order.id}",
            order,
            lambda to: templates.order_confirmed(to, order),
        )

    async def on_order_shipped(self, event: Event, scope: EffectScope) -> None:
        shipped = event.data
        assert isinstance(shipped, pb.OrderShipped) and shipped.order is not None
        order = shipped.order
        await self._email_customer(
            scope, f"order-shipped:{order.id}", order, lambda to: templates.order_shipped(to, order)
        )

    async def on_order_cancelled(self, event: Event, scope: EffectScope) -> None:
        cancelled = event.data
        assert isinstance(cancelled, pb.OrderCancelled) and cancelled.order is not None
        order = cancelled.order
        refunded = cancelled.refunded
        await self._email_customer(
            scope,
            f"order-cancelled:{order.id}",
            order,
            lambda to: templates.order_cancelled(to, order, refunded=refunded),
        )

    async def _email_customer(
        self,
        scope: EffectScope,
        key: str,
        order: pb_order.Order,
        template: Callable[[str], templates.Email],
    ) -> None:
        """Send the order's customer ``template`` once per ``key``; none without an address."""

        async def compose() -> templates.Email | None:
            email = await self.recipients.user_email(order.user_id, scope)
            return template(email) if email else None

        await send_once(scope, self.sender, key, compose)

    def handlers(self) -> dict[str, Handler]:
        return {
            "user.created": Handler(effect=self.on_user_created),
            "order.paid": Handler(effect=self.on_order_paid),
            "order.shipped": Handler(effect=self.on_order_shipped),
            "order.cancelled": Handler(effect=self.on_order_cancelled),
        }


@asynccontextmanager
async def subscription(env: ServiceEnv) -> AsyncIterator[Subscription]:
    async with env.email_sender.use(partial(configured_email_sender, env.config)) as sender:
        users = env.clients.stub(pb_user.UserServiceStub, "user")
        notifier = Notifier(sender, Recipients(users))
        yield Subscription(
            name="notification",
            queue=QUEUE,
            database=DATABASE,
            migrations=MIGRATIONS,
            handlers=notifier.handlers(),
        )
