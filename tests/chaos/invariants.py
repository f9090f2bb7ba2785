"""The system's invariants, read straight from the services' own stores.

Checked after every fault scenario (kill -9, broker outage, short client
deadlines, a full connection pool):

- stock is conserved: per product ``available + reserved + sold`` is what it
  was before the scenario;
- no unit is held for nobody: once reservation leases have run out,
  ``reserved`` equals the units of the product in PENDING_PAYMENT orders;
- every payment attempt ends: none stays PROCESSING past its bound.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from ec_recommend.config import StorageConfig
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.storage import open_database
from ec_recommend.services.order import tables as order_tables
from ec_recommend.services.product.store import products


@dataclass(frozen=True)
class Stock:
    available: int
    reserved: int
    sold: int

    @property
    def total(self) -> int:
        return self.available + self.reserved + self.sold


async def stock_levels(storage: StorageConfig) -> dict[str, Stock]:
    async with open_database(storage, "product", []) as db, db.reading() as conn:
        rows = await conn.execute(
            sa.select(products.c.id, products.c.available, products.c.reserved, products.c.sold)
        )
        return {row.id: Stock(row.available, row.reserved, row.sold) for row in rows}


async def pending_units(storage: StorageConfig) -> Counter[str]:
    """Units per product that PENDING_PAYMENT orders hold."""
    orders, items = order_tables.orders, order_tables.order_items
    async with open_database(storage, "order", []) as db, db.reading() as conn:
        rows = await conn.execute(
            sa.select(items.c.product_id, sa.func.sum(items.c.quantity))
            .join(orders, orders.c.id == items.c.order_id)
            .where(orders.c.status == "PENDING_PAYMENT")
            .group_by(items.c.product_id)
        )
        return Counter({product_id: int(quantity) for product_id, quantity in rows})


async def payments_in_flight(storage: StorageConfig, older_than: timedelta) -> list[str]:
    """Ids of payments still PROCESSING that started more than ``older_than`` ago."""
    payments = order_tables.payments
    cutoff: datetime = utcnow() - older_than
    async with open_database(storage, "order", []) as db, db.reading() as conn:
        rows = await conn.execute(
            sa.select(payments.c.id).where(
                payments.c.status == order_tables.PROCESSING, payments.c.created_at < cutoff
            )
        )
        return [row.id for row in rows]


async def check_stock(storage: StorageConfig, before: dict[str, Stock]) -> None:
    """Stock conserved and every reserved unit held by a PENDING_PAYMENT order."""
    after = await stock_levels(storage)
    pending = await pending_units(storage)
    conserved = {pid: (before[pid].total, s.total) for pid, s in after.items() if pid in before}
    changed = {pid: pair for pid, pair in conserved.items() if pair[0] != pair[1]}
    assert not changed, f"stock not conserved (before, after): {changed}"
    held = {pid: (s.reserved, pending[pid]) for pid, s in after.items()}
    lost = {pid: pair for pid, pair in held.items() if pair[0] != pair[1]}
    assert not lost, f"reserved units without their orders (reserved, pending): {lost}"


async def check_stock_eventually(
    storage: StorageConfig, before: dict[str, Stock], *, timeout: float, interval: float = 0.5
) -> None:
    """``check_stock`` polled until it holds (leases and timeouts must run out
    first), or its last failure once ``timeout`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await check_stock(storage, before)
            return
        except AssertionError:
            if loop.time() > deadline:
                raise
        await asyncio.sleep(interval)


async def order_count(storage: StorageConfig) -> int:
    """Orders of any status in the order service's store."""
    async with open_database(storage, "order", []) as db, db.reading() as conn:
        rows = await conn.execute(sa.select(sa.func.count()).select_from(order_tables.orders))
        return int(rows.scalar_one())
