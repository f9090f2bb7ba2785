"""The seller subscriber (seller-event-queue): sales ledger and new-order emails.

order.paid writes one sale entry per order line (in the batch's
transaction) and then, as an effect, emails each seller its own lines;
order.cancelled of a paid order writes the reversing entries. Only an event
that booked new lines has the effect, so a duplicate neither double-books
nor re-sends. A failed send leaves the entries booked and the effect
pending: the event comes back and the emails are sent again (at least once:
a seller whose email went out before another's failed gets it twice).
Sellers' addresses are asked once per received batch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from itertools import groupby

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.consumers import templates
from ec_recommend.consumers.email import EmailSender
from ec_recommend.consumers.recipients import Recipients
from ec_recommend.consumers.seller import store
from ec_recommend.consumers.settings import configured_email_sender
from ec_recommend.platform.events.consumer import EffectScope, Handler, Subscription
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.runtime.registry import ServiceEnv

log = logging.getLogger(__name__)

QUEUE = "seller-event-queue"
DATABASE = "seller"


def ledger_lines(order: pb_order.Order) -> list[store.LedgerLine]:
    return [
        store.LedgerLine(
            line_no=number,
            seller_id=item.seller_id,
            product_id=item.product_id,
            quantity=item.quantity,
            unit_price=item.unit_price.amount if item.unit_price else 0,
            currency=(item.unit_price.currency if item.unit_price else "") or "JPY",
        )
        for number, item in enumerate(order.items, start=1)
    ]


def was_paid(cancelled: pb.OrderCancelled) -> bool:
    order = cancelled.order
    return cancelled.refunded or bool(order and order.payment_id)


class SellerLedger:
    def __init__(self, sender: EmailSender, recipients: Recipients) -> None:
        self.sender = sender
        self.recipients = recipients

    async def book_sale(self, event: Event, uow: UnitOfWork) -> bool:
        """Book the order's lines; True (email the sellers) if any was new."""
        paid = event.data
        assert isinstance(paid, pb.OrderPaid) and paid.order is not None
        order = paid.order
        new_lines = await store.record(
            uow, order.id, store.SALE, ledger_lines(order), event.timestamp
        )
        return bool(new_lines)

    async def email_sellers(self, event: Event, scope: EffectScope) -> None:
        paid = event.data
        assert isinstance(paid, pb.OrderPaid) and paid.order is not None
        await self._email_sellers(paid.order, ledger_lines(paid.order), scope)

    async def book_reversal(self, event: Event, uow: UnitOfWork) -> None:
        cancelled = event.data
        assert isinstance(cancelled, pb.OrderCancelled) and cancelled.order is not None
        if not was_paid(cancelled):
            return  # nothing was booked for an unpaid order
        await store.record(
            uow, cancelled.order.id, store.REVERSAL, ledger_lines(cancelled.order), event.timestamp
        )

    async def _email_sellers(
        self, order: pb_order.Order, lines: Sequence[store.LedgerLine], scope: EffectScope
    ) -> None:
        items = list(order.items)
        by_seller = sorted(lines, key=lambda line: line.seller_id)
        for seller_id, seller_lines in groupby(by_seller, lambda line: line.seller_id):
            email = await self.recipients.seller_email(seller_id, scope)
            if email is None:
                continue
            own = [items[line.line_no - 1] for line in seller_lines]
            await self.sender.send(templates.seller_new_order(email, order, own))

    def handlers(self) -> dict[str, Handler]:
        return {
            "order.paid": Handler(apply=self.book_sale, effect=self.email_sellers),
            "order.cancelled": Handler(apply=self.book_reversal),
        }


@asynccontextmanager
async def subscription(env: ServiceEnv) -> AsyncIterator[Subscription]:
    async with env.email_sender.use(partial(configured_email_sender, env.config)) as sender:
        users = env.clients.stub(pb_user.UserServiceStub, "user")
        ledger = SellerLedger(sender, Recipients(users))
        yield Subscription(
            name="seller",
            queue=QUEUE,
            database=DATABASE,
            migrations=store.MIGRATIONS,
            handlers=ledger.handlers(),
        )
