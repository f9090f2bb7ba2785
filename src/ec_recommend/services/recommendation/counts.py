"""Paid orders in the recommendation counts: item stats, co-purchase pairs and
user purchase histories.

``record_paid_order`` counts an order id once; ``record_cancelled_order`` takes
a refunded order back out, once. Counters are bumped with ``INSERT .. ON
CONFLICT DO UPDATE`` in one unit of work with the order's marker row, so a
redelivered order counts once on either engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.platform.storage import (
    Database,
    PerDialect,
    UnitOfWork,
    dialect_insert,
    writing,
)
from ec_recommend.services.recommendation import domain
from ec_recommend.services.recommendation.tables import (
    cancelled_orders,
    co_purchases,
    item_stats,
    order_lines,
    paid_orders,
    user_items,
)

# Pairs grow with the square of an order's lines; beyond this many distinct
# items an order says little about which of them go together.
MAX_PAIRED_ITEMS = 50
MAX_ORDER_LINES = 500


def _marker(table: sa.Table) -> PerDialect[Any]:
    """Insert the order's marker row unless it is there (rowcount 0)."""
    return PerDialect(
        lambda dialect: dialect_insert(dialect, table).on_conflict_do_nothing(
            index_elements=[table.c.order_id]
        )
    )


def _add_stats(dialect: str) -> Any:
    insert = dialect_insert(dialect, item_stats)
    return insert.on_conflict_do_update(
        index_elements=[item_stats.c.product_id],
        set_={
            "orders": item_stats.c.orders + insert.excluded.orders,
            "quantity": item_stats.c.quantity + insert.excluded.quantity,
            "popularity": item_stats.c.popularity + insert.excluded.popularity,
        },
    )


def _add_pairs(dialect: str) -> Any:
    insert = dialect_insert(dialect, co_purchases)
    return insert.on_conflict_do_update(
        index_elements=[co_purchases.c.product_id, co_purchases.c.other_id],
        set_={"orders": co_purchases.c.orders + insert.excluded.orders},
    )


def _add_history(dialect: str) -> Any:
    insert = dialect_insert(dialect, user_items)
    return insert.on_conflict_do_update(
        index_elements=[user_items.c.user_id, user_items.c.product_id],
        set_={"purchased": user_items.c.purchased + insert.excluded.purchased},
    )


# Built once, run with a row of parameters each (executemany, in the sorted
# order of the rows: one lock order for every writer).
_PAID_MARKER = _marker(paid_orders)
_CANCELLED_MARKER = _marker(cancelled_orders)
_ADD_STATS = PerDialect(_add_stats)
_ADD_PAIRS = PerDialect(_add_pairs)
_ADD_HISTORY = PerDialect(_add_history)
_INSERT_LINES = sa.insert(order_lines)
_COUNTED = sa.select(paid_orders.c.order_id).where(
    paid_orders.c.order_id.in_(sa.bindparam("order_ids", expanding=True))
)
_IS_CANCELLED = sa.select(cancelled_orders.c.order_id).where(
    cancelled_orders.c.order_id == sa.bindparam("order_id")
)


class OrderCounts:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record_paid_order(
        self,
        order_id: str,
        user_id: str,
        lines: Iterable[tuple[str, int]],
        paid_at: datetime | None = None,
        uow: UnitOfWork | None = None,
    ) -> bool:
        """Count a paid order once; False if this order id was already counted
        (or was already cancelled: a late ``order.paid`` then counts nothing).

        Given ``uow`` (an event consumer's), the writes join it and the caller
        commits; likewise for the other writers here.
        """
        quantities = _merge_lines(order_id, lines)
        paid_at = aware(paid_at) if paid_at is not None else utcnow()
        async with writing(self.db, uow) as work:
            marker = {"order_id": order_id, "user_id": user_id, "paid_at": paid_at}
            if (await work.execute(_PAID_MARKER(work.dialect), marker)).rowcount == 0:
                return False
            await work.execute(
                _INSERT_LINES,
                [
                    {"order_id": order_id, "product_id": p, "quantity": q}
                    for p, q in quantities.items()
                ],
            )
            if await _is_cancelled(work, order_id):
                return False
            await self._count(work, user_id, quantities, paid_at, +1)
        return True

    async def record_cancelled_order(self, order_id: str, uow: UnitOfWork | None = None) -> bool:
        """Take a cancelled (refunded) order back out of the counts, once.

        True if counts changed; a cancellation seen before the payment makes
        the later ``record_paid_order`` count nothing.
        """
        if not order_id or len(order_id) > 100:
            raise InvalidArgument("order_id is required", field="order_id")
        async with writing(self.db, uow) as work:
            marker = {"order_id": order_id}
            if (await work.execute(_CANCELLED_MARKER(work.dialect), marker)).rowcount == 0:
                return False
            order = (
                await work.execute(sa.select(paid_orders).where(paid_orders.c.order_id == order_id))
            ).first()
            if order is None:
                return False
            rows = await work.execute(
                sa.select(order_lines).where(order_lines.c.order_id == order_id)
            )
            quantities = {row.product_id: int(row.quantity) for row in rows}
            if not quantities:
                return False  # recorded before lines were kept
            await self._count(work, order.user_id, quantities, aware(order.paid_at), -1)
        return True

    async def _count(
        self,
        work: UnitOfWork,
        user_id: str,
        quantities: Mapping[str, int],
        paid_at: datetime,
        sign: int,
    ) -> None:
        """Add (sign +1) or remove (-1) one order's items, pairs and user history."""
        decay = domain.decay_factor(paid_at)
        ids = sorted(quantities)  # one lock order for every writer
        await work.execute(
            _ADD_STATS(work.dialect),
            [
                {
                    "product_id": pid,
                    "orders": sign,
                    "quantity": sign * quantities[pid],
                    "popularity": sign * quantities[pid] * decay,
                }
                for pid in ids
            ],
        )
        paired = ids[:MAX_PAIRED_ITEMS]
        pairs = [
            {"product_id": a, "other_id": b, "orders": sign}
            for a in paired
            for b in paired
            if a != b
        ]
        if pairs:
            await work.execute(_ADD_PAIRS(work.dialect), pairs)
        if not user_id:
            return
        await work.execute(
            _ADD_HISTORY(work.dialect),
            [
                {
                    "user_id": user_id,
                    "product_id": pid,
                    "purchased": sign * quantities[pid],
                    "views": 0,
                    "last_at": paid_at,
                }
                for pid in ids
            ],
        )

    async def recorded_orders(self, order_ids: Sequence[str]) -> set[str]:
        """Which of ``order_ids`` (a page: a bounded read by key) were recorded."""
        if not order_ids:
            return set()
        key = {"order_ids": list(order_ids)}
        rows = await self.db.rows(_COUNTED, key)
        return {row.order_id for row in rows}

    async def paid_order_recorded(self, order_id: str) -> bool:
        async with self.db.reading() as conn:
            row = (
                await conn.execute(
                    sa.select(paid_orders.c.order_id).where(paid_orders.c.order_id == order_id)
                )
            ).first()
        return row is not None


async def _is_cancelled(work: UnitOfWork, order_id: str) -> bool:
    return (await work.execute(_IS_CANCELLED, {"order_id": order_id})).first() is not None


def _merge_lines(order_id: str, lines: Iterable[tuple[str, int]]) -> Mapping[str, int]:
    if not order_id or len(order_id) > 100:
        raise InvalidArgument("order_id is required (at most 100 characters)", field="order_id")
    merged: dict[str, int] = {}
    for product_id, quantity in lines:
        if not product_id or len(product_id) > 36 or quantity <= 0:
            raise InvalidArgument("each line needs a product id and a positive quantity")
        merged[product_id] = merged.get(product_id, 0) + quantity
    if not merged or len(merged) > MAX_ORDER_LINES:
        raise InvalidArgument(f"an order has 1 to {MAX_ORDER_LINES} distinct items", field="lines")
    return merged
