"""Orders this process created lately, kept so that paying one reads nothing first.

A payment needs what never changes of an order (its owner, lines and total);
its status is read by the statement that starts the charge. The order a
buyer pays is nearly always the one they created a moment before, through
the same process, so those are kept here, a bounded number, oldest dropped
first. Any other order is read from the database as before.
"""

from __future__ import annotations

from collections import OrderedDict

from ec_recommend.services.order import domain

# Orders (about 1 KB each, a line each): ten seconds of checkout at a hundred a second,
# many minutes of a shop's ordinary traffic, between an order and its payment.
DEFAULT_CAPACITY = 1024


class RecentOrders:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._orders: OrderedDict[str, domain.Order] = OrderedDict()

    def remember(self, order: domain.Order) -> None:
        self._orders[order.id] = order
        if len(self._orders) > self._capacity:
            self._orders.popitem(last=False)

    def get(self, order_id: str) -> domain.Order | None:
        """The order as it was created (its status may have moved on since)."""
        return self._orders.get(order_id)

    def __len__(self) -> int:
        return len(self._orders)
