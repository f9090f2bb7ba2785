"""The orders a process created lately, kept for their payment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ec_recommend.platform.money import Money
from ec_recommend.services.order import domain
from ec_recommend.services.order.recent import RecentOrders


def _order(order_id: str) -> domain.Order:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    return domain.Order(
        id=order_id,
        order_number=f"ORD-{order_id}",
        user_id="buyer",
        status=domain.PENDING_PAYMENT,
        total=Money(1200, "JPY"),
        items=(),
        stock_state="",
        payment_id="",
        created_at=now,
        updated_at=now,
    )


def test_an_order_is_known_as_it_was_created() -> None:
    recent = RecentOrders()
    order = _order("o1")

    recent.remember(order)

    assert recent.get("o1") is order
    assert recent.get("o2") is None


def test_the_oldest_is_dropped_past_the_capacity() -> None:
    recent = RecentOrders(capacity=2)
    for order_id in ("o1", "o2", "o3"):
        recent.remember(_order(order_id))

    assert len(recent) == 2
    assert recent.get("o1") is None
    assert [recent.get(i) is not None for i in ("o2", "o3")] == [True, True]


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        RecentOrders(capacity=0)
