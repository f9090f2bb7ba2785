"""Paid orders from OrderService (the backfill source until order.paid events).

Called with no end-user identity, OrderService lists every user's orders.
Every order that was ever paid counts: PAID, SHIPPED and DELIVERED. A pass
pages through each status by the time of the order's last change, newest
first, and stops at orders changed before the newest change the previous
pass saw, less ``OVERLAP`` (changes still committing as it read; order
hosts' clocks a little apart). Paging by creation time instead had to reach
back a whole payment window (an old order may be paid now): every pass,
every few seconds, re-read half an hour of orders, a cost that grew with the
order rate; so did a 60 s overlap, which read each order a dozen times.
Recording is idempotent per order id, and orders already counted are
skipped by one read per page; CANCELLED orders are taken back out (once) if
they had been counted.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb
from ec_recommend.platform.backfill import PassWindow, in_batches, newest_first, run_passes
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.services.recommendation.store import RecommendationStore

log = logging.getLogger(__name__)

PAID_STATUSES = ("PAID", "SHIPPED", "DELIVERED")
CANCELLED = "CANCELLED"
OVERLAP = timedelta(seconds=10)


def orders_in(
    orders: pb.OrderServiceStub, statuses: Sequence[str], window: PassWindow
) -> AsyncIterator[pb.Order]:
    async def fetch_page(
        status: str, page: pb_common.PageRequest
    ) -> tuple[list[pb.Order], pb_common.PageResponse | None]:
        response = await orders.list_orders(pb.ListOrdersRequest(status=status, page=page))
        return response.orders, response.page

    return newest_first(
        fetch_page, statuses, sort_by="updated_at", stamp=lambda o: o.updated_at, window=window
    )


async def record_order(
    store: RecommendationStore, order: pb.Order, uow: UnitOfWork | None = None
) -> bool:
    """Count a paid order (from ListOrders or an ``order.paid`` event's ``order``)."""
    lines = [(item.product_id, item.quantity) for item in order.items if item.quantity > 0]
    if not lines:
        return False
    paid_at = order.updated_at or order.created_at
    return await store.record_paid_order(order.id, order.user_id, lines, paid_at, uow)


async def poll_paid_orders(
    store: RecommendationStore,
    connect: Callable[[], pb.OrderServiceStub],
    *,
    interval: float,
    retry: float = 5.0,
) -> None:
    """Record paid orders now and every ``interval`` seconds (0 = until one pass succeeds).

    OrderService may be down or not deployed: that is logged and retried,
    never raised.
    """

    async def one_pass(window: PassWindow) -> int:
        added = 0
        stub = connect()
        async for batch in in_batches(orders_in(stub, PAID_STATUSES, window)):
            # Most were counted from their order.paid event already: one read
            # per page skips them, not a write transaction each.
            recorded = await store.recorded_orders([order.id for order in batch])
            for order in batch:
                if order.id not in recorded:
                    added += await record_order(store, order)
        # Cancelled after payment (refunded): take the order back out.
        async for order in orders_in(stub, (CANCELLED,), window):
            await store.record_cancelled_order(order.id)
        return added

    await run_passes(
        one_pass,
        interval=interval,
        retry=retry,
        overlap=OVERLAP,
        log=log,
        failed="recommendation: order backfill failed",
        done="recommendation: %d paid order(s) recorded",
    )
