"""Paid orders from OrderService (the backfill source until order.paid events).

Called with no end-user identity, OrderService lists every user's orders.
Every order that was ever paid counts: PAID, SHIPPED and DELIVERED. A pass
pages newest first and stops at orders created before the previous pass minus
the payment window (an order can only become paid within that window).
Recording is idempotent per order id, so overlapping passes are harmless;
CANCELLED orders are taken back out (once) if they had been counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb
from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.services.recommendation.store import RecommendationStore

log = logging.getLogger(__name__)

PAID_STATUSES = ("PAID", "SHIPPED", "DELIVERED")
CANCELLED = "CANCELLED"
PAGE_SIZE = 100


async def orders_in(
    orders: pb.OrderServiceStub, statuses: Sequence[str], since: datetime | None
) -> AsyncIterator[pb.Order]:
    for status in statuses:
        page = 1
        while True:
            response = await orders.list_orders(
                pb.ListOrdersRequest(
                    status=status,
                    page=pb_common.PageRequest(
                        page=page, page_size=PAGE_SIZE, sort_by="created_at", descending=True
                    ),
                )
            )
            older = False
            for order in response.orders:
                created = order.created_at
                if since is not None and created is not None and aware(created) < since:
                    older = True
                    break
                yield order
            total_pages = response.page.total_pages if response.page is not None else 0
            if older or page >= total_pages:
                break
            page += 1


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
    payment_window: float,
    retry: float = 5.0,
) -> None:
    """Record paid orders now and every ``interval`` seconds (0 = until one pass succeeds).

    OrderService may be down or not deployed: that is logged and retried,
    never raised.
    """
    since: datetime | None = None
    while True:
        started = utcnow()
        try:
            added = 0
            stub = connect()
            async for order in orders_in(stub, PAID_STATUSES, since):
                added += await record_order(store, order)
            # Cancelled after payment (refunded): take the order back out.
            async for order in orders_in(stub, (CANCELLED,), since):
                await store.record_cancelled_order(order.id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("recommendation: order backfill failed, retrying in %.0fs: %s", retry, exc)
            await asyncio.sleep(retry)
            continue
        if added:
            log.info("recommendation: %d paid order(s) recorded", added)
        since = started - timedelta(seconds=payment_window + 60)
        if interval <= 0:
            return
        await asyncio.sleep(interval)
