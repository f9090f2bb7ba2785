"""Paid orders in the recommendation counts: item stats, co-purchase pairs and
user purchase histories.

``record_paid_order`` counts an order id once; ``record_cancelled_order`` takes
a refunded order back out, once. Counters are bumped with ``INSERT .. ON
CONFLICT DO UPDATE`` in one unit of work with the order's marker row, so a
redelivered order counts once on either engine. An event consumer's batch
counts its orders together when it commits (``CountsAtCommit``): a statement
per step for the whole batch, not five per order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
    insert_new,
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
_ADD_STATS = PerDialect(_add_stats)
_ADD_PAIRS = PerDialect(_add_pairs)
_ADD_HISTORY = PerDialect(_add_history)
_INSERT_LINES = sa.insert(order_lines)
_COUNTED = sa.select(paid_orders.c.order_id).where(
    paid_orders.c.order_id.in_(sa.bindparam("order_ids", expanding=True))
)
_PAID_OF = sa.select(paid_orders).where(
    paid_orders.c.order_id.in_(sa.bindparam("order_ids", expanding=True))
)
_LINES_OF = sa.select(order_lines).where(
    order_lines.c.order_id.in_(sa.bindparam("order_ids", expanding=True))
)
_CANCELLED_OF = sa.select(cancelled_orders.c.order_id).where(
    cancelled_orders.c.order_id.in_(sa.bindparam("order_ids", expanding=True))
)


@dataclass(frozen=True)
class PaidOrder:
    """A paid order as the counts take it: its lines merged per product."""

    order_id: str
    user_id: str
    quantities: Mapping[str, int]
    paid_at: datetime


def paid_order(
    order_id: str, user_id: str, lines: Iterable[tuple[str, int]], paid_at: datetime | None = None
) -> PaidOrder:
    """A ``PaidOrder`` from its lines; ``InvalidArgument`` for a malformed one."""
    quantities = _merge_lines(order_id, lines)
    return PaidOrder(order_id, user_id, quantities, aware(paid_at) if paid_at else utcnow())


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
        order = paid_order(order_id, user_id, lines, paid_at)
        async with writing(self.db, uow) as work:
            counted, _ = await _record(work, [order], ())
        return order_id in counted

    async def record_cancelled_order(self, order_id: str, uow: UnitOfWork | None = None) -> bool:
        """Take a cancelled (refunded) order back out of the counts, once.

        True if counts changed; a cancellation seen before the payment makes
        the later ``record_paid_order`` count nothing.
        """
        _check_order_id(order_id)
        async with writing(self.db, uow) as work:
            _, taken_out = await _record(work, (), [order_id])
        return order_id in taken_out

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


class CountsAtCommit:
    """Paid and cancelled orders a unit of work counts when it commits.

    An event consumer's batch gathers its events' orders here and counts them
    all in a few statements, whatever the batch size (see ``_record``).
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._paid: list[PaidOrder] = []
        self._cancelled: list[str] = []

    def paid(self, order: PaidOrder) -> None:
        self._paid.append(order)

    def cancelled(self, order_id: str) -> None:
        _check_order_id(order_id)
        self._cancelled.append(order_id)

    async def flush(self) -> None:
        paid, cancelled = self._paid, self._cancelled
        self._paid, self._cancelled = [], []
        await _record(self._uow, paid, cancelled)


async def _record(
    work: UnitOfWork, paid: Sequence[PaidOrder], cancelled: Sequence[str]
) -> tuple[set[str], set[str]]:
    """Take cancelled orders out and count paid ones, in one pass for all of them.

    Returns the ids counted and the ids taken out. A statement per step, not
    per order. Every order, cancelled ones included, first gets its row in
    ``rec_paid_orders`` (a cancelled one a row without lines): a payment and
    a cancellation of one order in concurrent transactions meet on that key,
    so the later of them sees the other (each alone would miss the other's
    uncommitted marker and the order would stay counted). An order paid and
    cancelled in the same pass counts nothing. Rows are locked table by
    table, each in key order, and the counters, merged per row, last: one
    lock order for concurrent batches, so none deadlocks.
    """
    cancelled_ids = set(cancelled)
    first = {o.order_id: o for o in reversed(paid) if o.order_id not in cancelled_ids}
    now = utcnow()
    markers = [
        {"order_id": o.order_id, "user_id": o.user_id, "paid_at": o.paid_at} for o in first.values()
    ] + [{"order_id": i, "user_id": "", "paid_at": now} for i in cancelled_ids]
    new = await insert_new(
        work, paid_orders, paid_orders.c.order_id, sorted(markers, key=lambda m: m["order_id"])
    )
    totals = _Totals()
    taken_out: set[str] = set()
    newly_cancelled = await insert_new(
        work,
        cancelled_orders,
        cancelled_orders.c.order_id,
        [{"order_id": i} for i in sorted(cancelled_ids)],
    )
    if newly_cancelled:
        for order in await _counted_orders(work, newly_cancelled):
            totals.add(order, -1)
            taken_out.add(order.order_id)
    new_paid = new & first.keys()
    counted: set[str] = set()
    if new_paid:
        await work.execute(
            _INSERT_LINES,
            [
                {"order_id": i, "product_id": p, "quantity": q}
                for i in sorted(new_paid)
                for p, q in sorted(first[i].quantities.items())
            ],
        )
        # Cancellations recorded before they left a row in rec_paid_orders.
        refused = {
            row.order_id
            for row in await work.execute(_CANCELLED_OF, {"order_ids": sorted(new_paid)})
        }
        for order_id in sorted(new_paid - refused):
            totals.add(first[order_id], +1)
            counted.add(order_id)
    await totals.write(work)
    return counted, taken_out


async def _counted_orders(work: UnitOfWork, order_ids: set[str]) -> list[PaidOrder]:
    """The counted orders among ``order_ids``, with their lines as recorded."""
    key = {"order_ids": sorted(order_ids)}
    quantities: dict[str, dict[str, int]] = {}
    for row in await work.execute(_LINES_OF, key):
        quantities.setdefault(row.order_id, {})[row.product_id] = int(row.quantity)
    return [
        PaidOrder(row.order_id, row.user_id, quantities[row.order_id], aware(row.paid_at))
        for row in await work.execute(_PAID_OF, key)
        # No lines: a row a cancellation made, or an order counted before lines were kept.
        if row.order_id in quantities
    ]


class _Totals:
    """Counter additions of a pass, merged per row."""

    def __init__(self) -> None:
        self.stats: dict[str, list[float]] = {}
        self.pairs: dict[tuple[str, str], int] = {}
        self.history: dict[tuple[str, str], tuple[int, datetime]] = {}

    def add(self, order: PaidOrder, sign: int) -> None:
        """Add (sign +1) or remove (-1) one order's items, pairs and user history."""
        decay = domain.decay_factor(order.paid_at)
        ids = sorted(order.quantities)
        for pid in ids:
            quantity = sign * order.quantities[pid]
            stats = self.stats.setdefault(pid, [0, 0, 0.0])
            stats[0] += sign
            stats[1] += quantity
            stats[2] += quantity * decay
        paired = ids[:MAX_PAIRED_ITEMS]
        for a in paired:
            for b in paired:
                if a != b:
                    self.pairs[(a, b)] = self.pairs.get((a, b), 0) + sign
        if order.user_id:
            for pid in ids:
                key = (order.user_id, pid)
                purchased, last_at = self.history.get(key, (0, order.paid_at))
                quantity = sign * order.quantities[pid]
                self.history[key] = (purchased + quantity, max(last_at, order.paid_at))

    async def write(self, work: UnitOfWork) -> None:
        if self.stats:
            await work.execute(
                _ADD_STATS(work.dialect),
                [
                    {"product_id": p, "orders": o, "quantity": q, "popularity": pop}
                    for p, (o, q, pop) in sorted(self.stats.items())
                ],
            )
        if self.pairs:
            await work.execute(
                _ADD_PAIRS(work.dialect),
                [
                    {"product_id": a, "other_id": b, "orders": n}
                    for (a, b), n in sorted(self.pairs.items())
                ],
            )
        if self.history:
            await work.execute(
                _ADD_HISTORY(work.dialect),
                [
                    {"user_id": u, "product_id": p, "purchased": n, "views": 0, "last_at": at}
                    for (u, p), (n, at) in sorted(self.history.items())
                ],
            )


def _check_order_id(order_id: str) -> None:
    if not order_id or len(order_id) > 100:
        raise InvalidArgument("order_id is required (at most 100 characters)", field="order_id")


def _merge_lines(order_id: str, lines: Iterable[tuple[str, int]]) -> Mapping[str, int]:
    _check_order_id(order_id)
    merged: dict[str, int] = {}
    for product_id, quantity in lines:
        if not product_id or len(product_id) > 36 or quantity <= 0:
            raise InvalidArgument("each line needs a product id and a positive quantity")
        merged[product_id] = merged.get(product_id, 0) + quantity
    if not merged or len(merged) > MAX_ORDER_LINES:
        raise InvalidArgument(f"an order has 1 to {MAX_ORDER_LINES} distinct items", field="lines")
    return merged
