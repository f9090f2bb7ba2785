"""The system's invariants, read straight from the services' own stores.

Checked after every fault scenario (kill -9, broker outage, short client
deadlines, a full connection pool):

- stock is conserved: per product ``available + reserved + sold`` is what it
  was before the scenario;
- no unit is held for nobody: once reservation leases have run out,
  ``reserved`` equals the units of the product in PENDING_PAYMENT orders;
- every payment attempt ends: none stays PROCESSING past its bound;
- no money is taken for nothing: each paid order has exactly one SUCCEEDED
  payment, and every charge the sandbox provider made belongs to a paid
  order or has its refund recorded and acknowledged.
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
from ec_recommend.services.order import sandbox
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


async def payment_problems(storage: StorageConfig) -> list[str]:
    """What breaks the money invariants (empty when all hold)."""
    orders, payments, refunds = order_tables.orders, order_tables.payments, order_tables.refunds
    async with open_database(storage, "order", []) as db, db.reading() as conn:
        status_of = {r.id: (r.status, r.payment_id) for r in await conn.execute(sa.select(orders))}
        attempts = {
            r.id: (r.order_id, r.status)
            for r in await conn.execute(
                sa.select(payments.c.id, payments.c.order_id, payments.c.status)
            )
        }
        refunded = {
            r.payment_id: r.provider_refund_id
            for r in await conn.execute(
                sa.select(refunds.c.payment_id, refunds.c.provider_refund_id)
            )
        }
    async with open_database(storage, sandbox.SERVICE, []) as db, db.reading() as conn:
        charged = [
            r.idempotency_key
            for r in await conn.execute(
                sa.select(sandbox.charges.c.idempotency_key).where(
                    sandbox.charges.c.status == "succeeded"
                )
            )
        ]
    problems: list[str] = []
    succeeded = Counter(order for order, status in attempts.values() if status == "SUCCEEDED")
    for order_id, (status, payment_id) in status_of.items():
        if status in ("PAID", "SHIPPED", "DELIVERED"):
            if succeeded[order_id] != 1:
                problems.append(f"order {order_id} is {status} with {succeeded[order_id]} payments")
            elif attempts.get(payment_id, ("", ""))[1] != "SUCCEEDED":
                problems.append(f"order {order_id} names payment {payment_id}, not its success")
    for payment_id in charged:
        order_id, status = attempts.get(payment_id, ("", "unknown"))
        kept = status == "SUCCEEDED" and status_of.get(order_id, ("", ""))[0] in (
            "PAID",
            "SHIPPED",
            "DELIVERED",
        )
        if not kept and not refunded.get(payment_id):
            problems.append(f"charge of payment {payment_id} ({status}) kept without a refund")
    return problems


# Who applies order.paid (consumer name, its database), as registered in
# runtime.registry.CONSUMERS; each one's inbox records every event it applied.
PAID_SUBSCRIBERS = (
    ("notification", "notification"),
    ("analytics", "analytics"),
    ("seller", "seller"),
    ("recommendation", "recommendation"),
)


async def unhandled_paid_events(storage: StorageConfig) -> dict[str, list[str]]:
    """Per subscriber, the ids of order.paid events in the order outbox it has not applied.

    Empty when every event of every paid order reached every subscriber
    (after a replay where a broker lost them) and its side effect completed.
    """
    from ec_recommend.platform.events.inbox import effects_pending, inbox
    from ec_recommend.platform.events.outbox import outbox

    async with open_database(storage, "order", []) as db, db.reading() as conn:
        paid = {
            row.id
            for row in await conn.execute(
                sa.select(outbox.c.id).where(outbox.c.event_type == "order.paid")
            )
        }
    missing: dict[str, list[str]] = {}
    for consumer, database in PAID_SUBSCRIBERS:
        async with open_database(storage, database, []) as db, db.reading() as conn:
            rows = await conn.execute(
                sa.select(inbox.c.event_id).where(
                    inbox.c.consumer == consumer, inbox.c.event_type == "order.paid"
                )
            )
            pending = await conn.execute(
                sa.select(effects_pending.c.event_id).where(effects_pending.c.consumer == consumer)
            )
            applied = {row.event_id for row in rows} - {row.event_id for row in pending}
            lost = sorted(paid - applied)
        if lost:
            missing[consumer] = lost
    return missing


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
