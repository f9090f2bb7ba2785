"""The inventory subscriber (order-processing-queue): stock follows cancellations.

The order service reserves stock under the order's id when the order is
placed and commits it itself when the order is paid (its ``settle``), so
order.paid needs nothing here. order.cancelled gives the units back: a
reservation still held is released, a committed one is restocked. These are
effects (gRPC calls after the inbox commit): ProductService's reservation
transitions are idempotent by reservation id, so running one again after a
redelivery changes nothing. The payment timeout is the order service's own
durable sweep.

Delivery is unordered: a cancellation may be handled before the payment it
follows. Releasing the held units then returns exactly what commit + restock
would have.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.errors import FailedPrecondition
from ec_recommend.platform.events.consumer import EffectScope, Handler, Subscription
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import Migration
from ec_recommend.runtime.registry import ServiceEnv

QUEUE = "order-processing-queue"
DATABASE = "inventory"
MIGRATIONS: Sequence[Migration] = ()  # the inbox is all this consumer stores


class Inventory:
    def __init__(self, products: pb_product.ProductServiceStub) -> None:
        self.products = products

    async def give_back_stock(self, event: Event, scope: EffectScope) -> None:
        cancelled = event.data
        assert isinstance(cancelled, pb.OrderCancelled) and cancelled.order is not None
        request = pb_product.ReservationRequest(reservation_id=cancelled.order.id)
        try:
            await self.products.release_stock(request)
        except FailedPrecondition:
            # Committed (the order was paid): put the sold units back on sale.
            await self.products.restock_reservation(request)

    def handlers(self) -> dict[str, Handler]:
        return {"order.cancelled": Handler(effect=self.give_back_stock)}


@asynccontextmanager
async def subscription(env: ServiceEnv) -> AsyncIterator[Subscription]:
    inventory = Inventory(env.clients.stub(pb_product.ProductServiceStub, "product"))
    yield Subscription(
        name="inventory",
        queue=QUEUE,
        database=DATABASE,
        migrations=MIGRATIONS,
        handlers=inventory.handlers(),
    )
