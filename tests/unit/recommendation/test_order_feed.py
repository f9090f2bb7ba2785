"""The recommendation service's order backfill reads what changed since its last pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb
from ec_recommend.services.recommendation.order_feed import orders_in

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
        id=f"order-{n}", status="PAID", created_at=NOW - created, updated_at=NOW - changed
    )


async def test_an_old_order_paid_just_now_is_read_and_earlier_payments_are_not() -> None:
    # 1,000 orders paid an hour ago, one created 25 minutes ago and paid a minute ago
    hour = timedelta(hours=1)
    settled = [order(n, created=2 * hour, changed=hour) for n in range(1000)]
    late = order(1000, created=timedelta(minutes=25), changed=timedelta(minutes=1))
    stub = ListedOrders([*settled, late])
    since = NOW - timedelta(minutes=5)  # the previous pass, less the overlap

    seen = [o.id async for o in orders_in(stub, ("PAID",), since)]  # type: ignore[arg-type]

    assert seen == [late.id]
    assert stub.sorts == {"updated_at"}
    # one page: the pass stopped at the first order changed before ``since``
    assert stub.handed_out <= 100
