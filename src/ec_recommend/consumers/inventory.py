"""The inventory subscriber (order-processing-queue): stock follows orders.

The order service reserves stock under the order's id when the order is
placed. Here order.paid commits that reservation and order.cancelled gives
the units back: a reservation still held is released, a committed one is
restocked. ProductService's reservation transitions are idempotent, so a
redelivered event changes nothing; product.out_of_stock is emitted by the
product service's outbox when a commit leaves a product at zero. The payment
timeout runs here too, as a delayed message (``payment_timeout``).

Delivery is unordered: a cancellation may be handled before the payment it
follows. Releasing the held units then returns exactly what commit + restock
would have, and the late order.paid finds the reservation released and only
logs it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.consumers.payment_timeout import PaymentTimeouts
from ec_recommend.platform.errors import FailedPrecondition
from ec_recommend.platform.events.aws import aws_client
from ec_recommend.platform.events.consumer import Handler, Subscription
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import Migration, UnitOfWork
from ec_recommend.runtime.registry import ServiceEnv

log = logging.getLogger(__name__)

QUEUE = "order-processing-queue"
DATABASE = "inventory"
MIGRATIONS: Sequence[Migration] = ()  # the inbox is all this consumer stores


class Inventory:
    def __init__(
        self,
        products: pb_product.ProductServiceStub,
        timeouts: PaymentTimeouts | None = None,
    ) -> None:
        self.products = products
        self.timeouts = timeouts

    async def on_order_paid(self, event: Event, uow: UnitOfWork) -> None:
        paid = event.data
        assert isinstance(paid, pb.OrderPaid) and paid.order is not None
        request = pb_product.ReservationRequest(reservation_id=paid.order.id)
        try:
            await self.products.commit_stock(request)
        except FailedPrecondition:
            # Released or restocked: the order was cancelled meanwhile.
            log.warning("order %s paid but its reservation is no longer held", paid.order.id)

    async def on_order_cancelled(self, event: Event, uow: UnitOfWork) -> None:
        cancelled = event.data
        assert isinstance(cancelled, pb.OrderCancelled) and cancelled.order is not None
        request = pb_product.ReservationRequest(reservation_id=cancelled.order.id)
        try:
            await self.products.release_stock(request)
        except FailedPrecondition:
            # Committed (the order was paid): put the sold units back on sale.
            await self.products.restock_reservation(request)

    def handlers(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {
            "order.paid": self.on_order_paid,
            "order.cancelled": self.on_order_cancelled,
        }
        if self.timeouts is not None:
            table["order.created"] = self.timeouts.on_order_created
        return table


@asynccontextmanager
async def subscription(env: ServiceEnv) -> AsyncIterator[Subscription]:
    config = env.config
    async with aws_client("sqs", config.events) as sqs:
        timeouts = PaymentTimeouts(
            sqs,
            config.events,
            QUEUE,
            env.clients.stub(pb_order.OrderServiceStub, "order"),
            config.order.payment_timeout,
        )
        inventory = Inventory(env.clients.stub(pb_product.ProductServiceStub, "product"), timeouts)
        yield Subscription(
            name="inventory",
            queue=QUEUE,
            database=DATABASE,
            migrations=MIGRATIONS,
            handlers=inventory.handlers(),
        )
