"""The recommendation service's order backfill reads what changed since its
last pass, and records only the orders it has not recorded yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb
from ec_recommend.platform.backfill import PassWindow
from ec_recommend.services.recommendation.order_feed import orders_in, poll_paid_orders

pytestmark = pytest.mark.asyncio

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class ListedOrders:
    """ListOrders over fixed orders, sorted as asked, counting the orders it handed out."""

    def __init__(self, orders: list[pb.Order]) -> None:
        self.orders = orders
        self.handed_out = 0
        self.sorts: set[str] = set()

    async def list_orders(self, request: pb.ListOrdersRequest) -> pb.ListOrdersResponse:
        page = request.page
        assert page is not None
        self.sorts.add(page.sort_by)
        matching = sorted(
            (o for o in self.orders if o.status == request.status),
            key=lambda o: getattr(o, page.sort_by),
            reverse=page.descending,
        )
        start = (page.page - 1) * page.page_size
        items = matching[start : start + page.page_size]
        self.handed_out += len(items)
        pages = -(-len(matching) // page.page_size)
        return pb.ListOrdersResponse(orders=items, page=pb_common.PageResponse(total_pages=pages))


def order(n: int, *, created: timedelta, changed: timedelta) -> pb.Order:
    return pb.Order(
        id=f"order-{n}",
        status="PAID",
        user_id="u-1",
        items=[pb.OrderItem(product_id="p-1", quantity=1)],
        created_at=NOW - created,
        updated_at=NOW - changed,
    )


async def test_an_old_order_paid_just_now_is_read_and_earlier_payments_are_not() -> None:
    # 1,000 orders paid an hour ago, one created 25 minutes ago and paid a minute ago
    hour = timedelta(hours=1)
    settled = [order(n, created=2 * hour, changed=hour) for n in range(1000)]
    late = order(1000, created=timedelta(minutes=25), changed=timedelta(minutes=1))
    stub = ListedOrders([*settled, late])
    window = PassWindow(since=NOW - timedelta(minutes=5))  # the previous pass, less the overlap

    seen = [o.id async for o in orders_in(stub, ("PAID",), window)]  # type: ignore[arg-type]

    assert seen == [late.id]
    assert window.newest == late.updated_at
    assert stub.sorts == {"updated_at"}
    # one page: the pass stopped at the first order changed before ``since``
    assert stub.handed_out <= 100


class CountingStore:
    """The store's side of a pass: which orders it knew, which it was asked to record."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.lookups = 0
        self.recorded: list[str] = []

    async def recorded_orders(self, order_ids: list[str]) -> set[str]:
        self.lookups += 1
        return self.known & set(order_ids)

    async def record_paid_order(self, order_id: str, *_: object) -> bool:
        self.recorded.append(order_id)
        return True


async def test_orders_already_recorded_cost_one_lookup_per_page_not_a_write_each() -> None:
    # 250 paid orders, 240 of them already counted from their order.paid events
    orders = [
        order(n, created=timedelta(minutes=2), changed=timedelta(seconds=n)) for n in range(250)
    ]
    store = CountingStore({o.id for o in orders[10:]})
    stub = ListedOrders(orders)

    await poll_paid_orders(store, lambda: stub, interval=0)  # type: ignore[arg-type]

    assert sorted(store.recorded) == sorted(o.id for o in orders[:10])
    assert store.lookups == 3  # pages of 100, 100 and 50
