"""The analytics subscriber (analytics-event-queue): counts every event it is sent.

Each event adds one to its (type, UTC day) counter; product views come from
``analytics.user_activity`` and paid units from ``order.paid``, which together
give conversion per product.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.consumers.analytics import store
from ec_recommend.platform.events.consumer import Handler, Subscription
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.runtime.registry import ServiceEnv

QUEUE = "analytics-event-queue"
DATABASE = "analytics"
PRODUCT_VIEW = "product_view"
MAX_ID = 64  # analytics_product_stats.product_id

COUNTED_TYPES = (
    "user.created",
    "user.updated",
    "order.created",
    "order.paid",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
    "analytics.user_activity",
)


async def count(event: Event, uow: UnitOfWork) -> None:
    store.tally(uow).count(event.id, event.type, event.timestamp)


async def on_user_activity(event: Event, uow: UnitOfWork) -> None:
    activity = event.data
    assert isinstance(activity, pb.UserActivity)
    at = activity.occurred_at or event.timestamp
    # Only ids that can name a product add a view; the event counts either way.
    viewed = activity.activity == PRODUCT_VIEW and 0 < len(activity.product_id) <= MAX_ID
    store.tally(uow).count(
        event.id, event.type, at, view_of=activity.product_id if viewed else None
    )


async def on_order_paid(event: Event, uow: UnitOfWork) -> None:
    paid = event.data
    assert isinstance(paid, pb.OrderPaid) and paid.order is not None
    sales = [
        store.Sale(
            item.product_id,
            item.quantity,
            item.line_total.amount if item.line_total else 0,
        )
        for item in paid.order.items
    ]
    store.tally(uow).count(event.id, event.type, event.timestamp, sale=(paid.order.id, sales))


def handlers() -> dict[str, Handler]:
    """Local writes only: counting never leaves the consumer's database."""
    table = dict.fromkeys(COUNTED_TYPES, Handler(apply=count))
    table["analytics.user_activity"] = Handler(apply=on_user_activity)
    table["order.paid"] = Handler(apply=on_order_paid)
    return table


@asynccontextmanager
async def subscription(env: ServiceEnv) -> AsyncIterator[Subscription]:
    yield Subscription(
        name="analytics",
        queue=QUEUE,
        database=DATABASE,
        migrations=store.MIGRATIONS,
        handlers=handlers(),
    )
