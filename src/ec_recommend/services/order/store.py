"""The queries on the order tables (``tables``).

Status changes are compare-and-set UPDATEs (``... WHERE status = :from``), so
two racing changes (a payment and a cancel, say) cannot both win.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.errors import NotFound
from ec_recommend.platform.money import Money
from ec_recommend.platform.paging import Page
from ec_recommend.platform.storage import Database, UnitOfWork
from ec_recommend.services.order import domain
from ec_recommend.services.order.tables import (
    order_items,
    order_numbers,
    orders,
)

SORT_COLUMNS: dict[str, Any] = {
    "created_at": orders.c.created_at,
    "total_amount": orders.c.total_amount,
}

# Called inside a unit of work that changed an order (to record its event).
OrderHook = Callable[[UnitOfWork, domain.Order], Awaitable[None]]


def _line(row: Any, currency: str) -> domain.Line:
    return domain.Line(
        row.product_id, row.seller_id, row.name, row.quantity, Money(row.unit_price, currency)
    )


class OrderReader:
    """Reads shared by the order store's parts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, order_id: str, uow: UnitOfWork | None = None) -> domain.Order:
        found = await self.get_many([order_id], uow)
        if not found:
            raise NotFound(f"order {order_id} not found", order_id=order_id)
        return found[0]

    async def get_many(
        self, order_ids: Sequence[str], uow: UnitOfWork | None = None
    ) -> list[domain.Order]:
        if not order_ids:
            return []
        if uow is not None:
            return await self._load(uow.connection, order_ids)
        async with self.db.reading() as conn:
            return await self._load(conn, order_ids)

    @staticmethod
    async def _load(conn: Any, order_ids: Sequence[str]) -> list[domain.Order]:
        rows = (await conn.execute(sa.select(orders).where(orders.c.id.in_(order_ids)))).all()
        item_rows = (
            await conn.execute(
                sa.select(order_items)
                .where(order_items.c.order_id.in_(order_ids))
                .order_by(order_items.c.order_id, order_items.c.line_no)
            )
        ).all()
        items: dict[str, list[Any]] = {}
        for item in item_rows:
            items.setdefault(item.order_id, []).append(item)
        by_id = {
            row.id: domain.Order(
                id=row.id,
                order_number=row.order_number,
                user_id=row.user_id,
                status=row.status,
                total=Money(row.total_amount, row.currency),
                items=tuple(_line(i, row.currency) for i in items.get(row.id, [])),
                stock_state=row.stock_state,
                payment_id=row.payment_id or "",
                created_at=aware(row.created_at),
                updated_at=aware(row.updated_at),
            )
            for row in rows
        }
        return [by_id[oid] for oid in order_ids if oid in by_id]


class OrderStore(OrderReader):
    async def create(
        self,
        order_id: str,
        user_id: str,
        lines: Sequence[domain.Line],
        total: Money,
        *,
        on_created: OrderHook,
    ) -> domain.Order:
        now = utcnow()
        async with self.db.unit_of_work() as uow:
            result = await uow.execute(sa.insert(order_numbers).values(order_id=order_id))
            seq = int(result.inserted_primary_key[0])  # type: ignore[index]
            await uow.execute(
                sa.insert(orders).values(
                    id=order_id,
                    order_number=domain.order_number(now, seq),
                    user_id=user_id,
                    status=domain.PENDING_PAYMENT,
                    currency=total.currency,
                    total_amount=total.amount,
                    stock_state=domain.STOCK_RESERVED,
                    created_at=now,
                    updated_at=now,
                )
            )
            await uow.execute(
                sa.insert(order_items),
                [
                    {
                        "order_id": order_id,
                        "line_no": n,
                        "product_id": line.product_id,
                        "seller_id": line.seller_id,
                        "name": line.name,
                        "quantity": line.quantity,
                        "unit_price": line.unit_price.amount,
                    }
                    for n, line in enumerate(lines)
                ],
            )
            order = await self.get(order_id, uow)
            await on_created(uow, order)
            await uow.commit()
        return order

    async def change_status(
        self,
        order_id: str,
        current: str,
        target: str,
        *,
        on_changed: OrderHook,
        reason: str | None = None,
        payment_id: str | None = None,
        also: Callable[[UnitOfWork], Awaitable[None]] | None = None,
    ) -> domain.Order | None:
        """Move ``current`` → ``target``; None when the order is no longer ``current``."""
        values: dict[str, Any] = {"status": target, "updated_at": utcnow()}
        if reason is not None:
            values["cancel_reason"] = reason[:200]
        if payment_id is not None:
            values["payment_id"] = payment_id
        async with self.db.unit_of_work() as uow:
            result = await uow.execute(
                sa.update(orders)
                .where(orders.c.id == order_id, orders.c.status == current)
                .values(**values)
            )
            if result.rowcount == 0:
                return None
            if also is not None:
                await also(uow)
            order = await self.get(order_id, uow)
            await on_changed(uow, order)
            await uow.commit()
        return order

    async def set_stock_state(self, order_id: str, current: str, target: str) -> None:
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(orders)
                .where(orders.c.id == order_id, orders.c.stock_state == current)
                .values(stock_state=target)
            )
            await uow.commit()

    async def list_page(
        self, page: Page, *, user_id: str = "", seller_id: str = "", status: str = ""
    ) -> tuple[list[domain.Order], int]:
        conditions: list[Any] = []
        if user_id:
            conditions.append(orders.c.user_id == user_id)
        if seller_id:
            conditions.append(
                orders.c.id.in_(
                    sa.select(order_items.c.order_id).where(order_items.c.seller_id == seller_id)
                )
            )
        if status:
            conditions.append(orders.c.status == status)
        column = SORT_COLUMNS[page.sort_by]
        query = (
            sa.select(orders.c.id)
            .where(*conditions)
            .order_by(column.desc() if page.descending else column.asc(), orders.c.id)
            .limit(page.size)
            .offset(page.offset)
        )
        count = sa.select(sa.func.count()).select_from(orders).where(*conditions)
        async with self.db.reading() as conn:
            ids = [row.id for row in await conn.execute(query)]
            total = (await conn.execute(count)).scalar_one()
        return await self.get_many(ids), int(total)

    async def expired_unpaid(
        self, created_before: datetime, limit: int = 100, *, offset: int = 0
    ) -> list[str]:
        async with self.db.reading() as conn:
            rows = await conn.execute(
                sa.select(orders.c.id)
                .where(
                    orders.c.status == domain.PENDING_PAYMENT,
                    orders.c.created_at < created_before,
                )
                .order_by(orders.c.created_at, orders.c.id)
                .limit(limit)
                .offset(offset)
            )
            return [row.id for row in rows]

    async def earliest_unpaid(self, created_from: datetime | None = None) -> datetime | None:
        """When the oldest order still unpaid was created (at or after ``created_from``)."""
        conditions = [orders.c.status == domain.PENDING_PAYMENT]
        if created_from is not None:
            conditions.append(orders.c.created_at >= created_from)
        async with self.db.reading() as conn:
            query = sa.select(sa.func.min(orders.c.created_at)).where(*conditions)
            earliest = (await conn.execute(query)).scalar_one()
        return None if earliest is None else aware(earliest)

    async def unsettled(self, limit: int = 100) -> list[domain.Order]:
        """Orders whose stock reservation lags behind their status (a failed call)."""
        lagging = sa.or_(
            sa.and_(
                orders.c.status == domain.CANCELLED,
                orders.c.stock_state.in_((domain.STOCK_RESERVED, domain.STOCK_COMMITTED)),
            ),
            sa.and_(
                orders.c.status.in_((domain.PAID, domain.SHIPPED, domain.DELIVERED)),
                orders.c.stock_state == domain.STOCK_RESERVED,
            ),
        )
        async with self.db.reading() as conn:
            ids = [
                row.id
                for row in await conn.execute(sa.select(orders.c.id).where(lagging).limit(limit))
            ]
        return await self.get_many(ids)
