"""When the sweeper wakes: at the earliest unpaid order's deadline, or one timeout
from now when there is none (no order placed later can be due sooner)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import pytest

from ec_recommend.platform.clock import utcnow
from ec_recommend.services.order.sweeper import PaymentDeadlines

pytestmark = pytest.mark.asyncio


class Store:
    def __init__(self, earliest: datetime | None) -> None:
        self.earliest = earliest
        self.asked: list[datetime | None] = []

    async def earliest_unpaid(self, created_from: datetime | None = None) -> datetime | None:
        self.asked.append(created_from)
        return self.earliest


def deadlines(store: Store) -> PaymentDeadlines:
    return PaymentDeadlines(
        cast(Any, None), cast(Any, store), payment_timeout=60.0, interval=3600.0
    )


async def test_the_next_deadline_is_the_earliest_unpaid_orders() -> None:
    placed = utcnow() - timedelta(seconds=10)
    store = Store(placed)
    looked = utcnow() - timedelta(seconds=30)
    assert await deadlines(store).next_deadline(looked) == placed + timedelta(seconds=60)
    assert store.asked == [looked]  # orders looked at before are the full sweep's


async def test_with_no_unpaid_order_the_sweeper_looks_again_one_timeout_later() -> None:
    before = utcnow()
    due = await deadlines(Store(None)).next_deadline(None)
    assert before + timedelta(seconds=60) <= due <= utcnow() + timedelta(seconds=60)
