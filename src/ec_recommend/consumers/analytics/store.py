"""Analytics tables: a log of counted event ids and the counters built from it.

Counting is idempotent on its own: an event id already in ``analytics_events``
is not counted again, whatever the delivery layer does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from ec_recommend.consumers._sql import add_to
from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.storage import Database, Migration, UnitOfWork, insert_new
from ec_recommend.platform.storage.database import create_tables

metadata = sa.MetaData()

counted_events = sa.Table(
    "analytics_events",
    metadata,
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
)

daily_counts = sa.Table(
    "analytics_daily_counts",
    metadata,
    sa.Column("event_type", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

# Orders whose sales were added, so an order paid twice (two events) sells once.
counted_orders = sa.Table(
    "analytics_paid_orders",
    metadata,
    sa.Column("order_id", sa.String(100), primary_key=True),
    sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
)

product_stats = sa.Table(
    "analytics_product_stats",
    metadata,
    sa.Column("product_id", sa.String(64), primary_key=True),
    sa.Column("views", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("paid_quantity", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("paid_orders", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("revenue", sa.BigInteger, nullable=False, server_default="0"),
)

MIGRATIONS: Sequence[Migration] = (
    Migration(1, create_tables(metadata)),
    Migration(2, create_tables(metadata)),  # analytics_paid_orders (create_all skips the rest)
)


@dataclass(frozen=True)
class Sale:
    product_id: str
    quantity: int
    amount: int


@dataclass(frozen=True)
class DailyCount:
    event_type: str
    day: date
    count: int


@dataclass(frozen=True)
class ProductCounters:
    product_id: str
    views: int = 0
    paid_quantity: int = 0
    paid_orders: int = 0
    revenue: int = 0

    @property
    def conversion(self) -> float:
        """Paid units per view; 0 until the product has been viewed."""
        return self.paid_quantity / self.views if self.views else 0.0


def tally(uow: UnitOfWork) -> Tally:
    """The events ``uow`` counts when it commits."""
    return uow.at_commit(Tally)


@dataclass(frozen=True)
class _Counted:
    event_type: str
    day: date
    view_of: str | None  # the product a counted view adds to
    sale: tuple[str, Sequence[Sale]] | None  # an order id and its paid lines


class Tally:
    """Events a unit of work counts, written when it commits: a statement for
    the batch's event ids, one for its orders, then the counters they add.

    An event id already counted adds nothing; an order already counted (paid
    again under another event id) sells nothing more. A batch of ten events
    costs what one does, where each event was a statement of its own.
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._events: dict[str, _Counted] = {}

    def count(
        self,
        event_id: str,
        event_type: str,
        at: datetime,
        *,
        view_of: str | None = None,
        sale: tuple[str, Sequence[Sale]] | None = None,
    ) -> None:
        """Count one event for its UTC day, with the view or the sale it carries."""
        self._events.setdefault(event_id, _Counted(event_type, aware(at).date(), view_of, sale))

    async def flush(self) -> None:
        events, self._events = self._events, {}
        uow, now = self._uow, utcnow()
        new = await insert_new(
            uow,
            counted_events,
            counted_events.c.event_id,
            [
                {"event_id": i, "event_type": c.event_type, "day": c.day, "counted_at": now}
                for i, c in sorted(events.items())
            ],
        )
        sales: dict[str, Sequence[Sale]] = {}
        for event_id in sorted(new):
            counted = events[event_id]
            day = {"event_type": counted.event_type, "day": counted.day}
            add_to(uow, daily_counts, day, {"count": 1})
            if counted.view_of:
                add_to(uow, product_stats, {"product_id": counted.view_of}, {"views": 1})
            if counted.sale:
                sales.setdefault(*counted.sale)
        sold = await insert_new(
            uow,
            counted_orders,
            counted_orders.c.order_id,
            [{"order_id": order_id, "counted_at": now} for order_id in sorted(sales)],
        )
        for order_id in sorted(sold):
            for sale in sales[order_id]:
                add_to(
                    uow,
                    product_stats,
                    {"product_id": sale.product_id},
                    {"paid_quantity": sale.quantity, "paid_orders": 1, "revenue": sale.amount},
                )


class AnalyticsReader:
    """Queries behind AnalyticsService."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def daily_counts(
        self, first: date, last: date, event_type: str | None = None
    ) -> list[DailyCount]:
        query = (
            sa.select(daily_counts)
            .where(daily_counts.c.day >= first, daily_counts.c.day <= last)
            .order_by(daily_counts.c.day, daily_counts.c.event_type)
        )
        if event_type:
            query = query.where(daily_counts.c.event_type == event_type)
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [DailyCount(r.event_type, r.day, int(r._mapping["count"])) for r in rows]

    async def product_counters(self, product_ids: Sequence[str]) -> list[ProductCounters]:
        """One entry per id, in order; products never seen have zero counters."""
        async with self.db.reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(product_stats).where(product_stats.c.product_id.in_(product_ids))
                )
            ).all()
        found = {
            r.product_id: ProductCounters(
                r.product_id, int(r.views), int(r.paid_quantity), int(r.paid_orders), int(r.revenue)
            )
            for r in rows
        }
        return [found.get(pid, ProductCounters(pid)) for pid in product_ids]
