"""The queries on the order tables (``tables``).

Status changes are compare-and-set UPDATEs (``... WHERE status = :from``), so
two racing changes (a payment and a cancel, say) cannot both win.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.errors import NotFound
from ec_recommend.platform.events.outbox import event_row_binds, outbox, record_row
from ec_recommend.platform.money import Money
from ec_recommend.platform.paging import Page
from ec_recommend.platform.storage import Database, UnitOfWork
from ec_recommend.platform.storage.statements import prefixed, prefixed_binds
from ec_recommend.services.order import domain
from ec_recommend.services.order.numbers import SequenceBlocks
from ec_recommend.services.order.tables import (
    order_items,
    order_numbers,
    orders,
)

SORT_COLUMNS: dict[str, Any] = {
    "created_at": orders.c.created_at,
    "total_amount": orders.c.total_amount,
    "updated_at": orders.c.updated_at,  # for backfills; the REST API offers the other two
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
        key = {"order_ids": list(order_ids)}
        if uow is not None:
            rows = (await uow.execute(_ORDERS_WITH_LINES, key)).all()
        else:
            rows = await self.db.rows(_ORDERS_WITH_LINES, key)  # by key: bounded
        return _orders(order_ids, rows)


# Each order with its lines, in one statement (lines never change after create).
_ORDER_WITH_LINES = sa.select(
    orders,
    order_items.c.line_no,
    order_items.c.product_id,
    order_items.c.seller_id,
    order_items.c.name,
    order_items.c.quantity,
    order_items.c.unit_price,
).select_from(orders.outerjoin(order_items, order_items.c.order_id == orders.c.id))


_ORDERS_WITH_LINES = _ORDER_WITH_LINES.where(
    orders.c.id.in_(sa.bindparam("order_ids", expanding=True))
).order_by(orders.c.id, order_items.c.line_no)

# Writes built once, run with parameters (see ``platform.storage.statements``);
# an UPDATE's parameters are named apart from the columns it sets.
_ADD_NUMBER = sa.insert(order_numbers)
_ADD_ORDER = sa.insert(orders)
_ADD_LINES = sa.insert(order_items)


# On PostgreSQL a create is one statement: the number, the order, its lines
# and its event, inserted by data-modifying CTEs, all or nothing. One round
# trip where the transaction took six (BEGIN, four INSERTs, COMMIT). The
# lines come as one array a column (``unnest``), so one statement serves any
# number of them.
_ORDER_COLUMNS = (
    "id",
    "order_number",
    "user_id",
    "status",
    "currency",
    "total_amount",
    "stock_state",
    "created_at",
    "updated_at",
)
_LINE_ARRAYS = ("line_no", "product_id", "seller_id", "name", "quantity", "unit_price")
_LINE_VALUES = (
    sa.func.unnest(
        *(
            sa.bindparam(f"l_{name}", type_=postgresql.ARRAY(order_items.c[name].type))
            for name in _LINE_ARRAYS
        )
    )
    .table_valued(*(sa.column(name, order_items.c[name].type) for name in _LINE_ARRAYS))
    .render_derived(name="line")
)
_CREATE_AT_ONCE = (
    sa.insert(outbox)
    .values(event_row_binds("e_"))
    .add_cte(
        sa.insert(order_numbers)
        .values(seq=sa.bindparam("n_seq", type_=sa.Integer), order_id=sa.bindparam("o_id"))
        .cte("numbered"),
        sa.insert(orders).values(prefixed_binds(orders, "o_", _ORDER_COLUMNS)).cte("placed"),
        sa.insert(order_items)
        .from_select(
            ["order_id", *_LINE_ARRAYS],
            sa.select(
                sa.bindparam("o_id", type_=orders.c.id.type),
                *(_LINE_VALUES.c[name] for name in _LINE_ARRAYS),
            ),
        )
        .cte("lined"),
    )
)
_CHANGE_STATUS = (
    sa.update(orders)
    .where(orders.c.id == sa.bindparam("b_order_id"), orders.c.status == sa.bindparam("b_current"))
    .returning(*orders.c)
)
_CHANGE_STOCK_STATE = (
    sa.update(orders)
    .where(
        orders.c.id == sa.bindparam("b_order_id"),
        orders.c.stock_state == sa.bindparam("b_current"),
    )
    .values(stock_state=sa.bindparam("b_target"))
    .returning(*orders.c)
)


def _orders(order_ids: Sequence[str], rows: Sequence[Any]) -> list[domain.Order]:
    """The orders of ``order_ids`` found in ``rows`` (``_ORDERS_WITH_LINES``), in that order."""
    by_id: dict[str, list[Any]] = {}
    for row in rows:
        by_id.setdefault(row.id, []).append(row)
    found = {oid: _order(lines[0], lines) for oid, lines in by_id.items()}
    return [found[oid] for oid in order_ids if oid in found]


def _order(
    row: Any, lines: Sequence[Any], items: tuple[domain.Line, ...] | None = None
) -> domain.Order:
    """The order of an ``orders`` row; its lines from ``lines`` (joined rows)
    unless ``items`` gives them."""
    if items is None:
        items = tuple(_line(line, row.currency) for line in lines if line.line_no is not None)
    return domain.Order(
        id=row.id,
        order_number=row.order_number,
        user_id=row.user_id,
        status=row.status,
        total=Money(row.total_amount, row.currency),
        items=items,
        stock_state=row.stock_state,
        payment_id=row.payment_id or "",
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def _new_order(
    order_id: str, user_id: str, lines: Sequence[domain.Line], total: Money, seq: int
) -> domain.Order:
    """The order as its create writes it (nothing is read back: the row holds
    nothing else)."""
    now = utcnow()
    return domain.Order(
        id=order_id,
        order_number=domain.order_number(now, seq),
        user_id=user_id,
        status=domain.PENDING_PAYMENT,
        total=total,
        items=tuple(lines),
        stock_state=domain.STOCK_RESERVED,
        payment_id="",
        created_at=now,
        updated_at=now,
    )


def _order_row(order: domain.Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "order_number": order.order_number,
        "user_id": order.user_id,
        "status": order.status,
        "currency": order.total.currency,
        "total_amount": order.total.amount,
        "stock_state": order.stock_state,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def _line_rows(order: domain.Order) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order.id,
            "line_no": n,
            "product_id": line.product_id,
            "seller_id": line.seller_id,
            "name": line.name,
            "quantity": line.quantity,
            "unit_price": line.unit_price.amount,
        }
        for n, line in enumerate(order.items)
    ]


def _created_at_once(order: domain.Order, seq: int, event: Mapping[str, Any]) -> dict[str, Any]:
    """``_CREATE_AT_ONCE``'s parameters: the number, the order row, its lines
    as one array a column, the event row."""
    lines = _line_rows(order)
    return {
        "n_seq": seq,
        **prefixed("o_", _order_row(order)),
        **{f"l_{name}": [line[name] for line in lines] for name in _LINE_ARRAYS},
        **prefixed("e_", event),
    }


class OrderStore(OrderReader):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._numbers = SequenceBlocks(db) if db.dialect == "postgresql" else None

    async def create(
        self,
        order_id: str,
        user_id: str,
        lines: Sequence[domain.Line],
        total: Money,
        *,
        created_event: Callable[[domain.Order], Mapping[str, Any]],
    ) -> domain.Order:
        """Write a new order, its lines and ``created_event``'s outbox row:
        all or nothing. On PostgreSQL one statement (``_CREATE_AT_ONCE``)."""
        if self._numbers is not None:
            seq = await self._numbers.next()
            order = _new_order(order_id, user_id, lines, total, seq)
            event = created_event(order)
            await self.db.write(_CREATE_AT_ONCE, _created_at_once(order, seq, event))
            return order
        async with self.db.unit_of_work() as uow:
            result = await uow.execute(_ADD_NUMBER, {"order_id": order_id})
            seq = int(result.inserted_primary_key[0])  # type: ignore[index]
            order = _new_order(order_id, user_id, lines, total, seq)
            await uow.execute(_ADD_ORDER, _order_row(order))
            await uow.execute(_ADD_LINES, _line_rows(order))
            await record_row(uow, created_event(order))
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
        items: tuple[domain.Line, ...] | None = None,
    ) -> domain.Order | None:
        """Move ``current`` → ``target``; None when the order is no longer ``current``.

        ``items``, the order's lines when the caller has them (they never
        change), spare reading them back.
        """
        # SET takes the columns named in ``values`` (compiled once per set).
        values: dict[str, Any] = {
            "b_order_id": order_id,
            "b_current": current,
            "status": target,
            "updated_at": utcnow(),
        }
        if reason is not None:
            values["cancel_reason"] = reason[:200]
        if payment_id is not None:
            values["payment_id"] = payment_id
        async with self.db.unit_of_work() as uow:
            row = (await uow.execute(_CHANGE_STATUS, values)).first()
            if row is None:
                return None
            if also is not None:
                await also(uow)
            if items is None:
                order = await self.get(order_id, uow)
            else:
                order = _order(row, (), items)
            await on_changed(uow, order)
            await uow.commit()
        return order

    async def set_stock_state(self, order: domain.Order, target: str) -> domain.Order | None:
        """Move the order's stock state from what ``order`` says to ``target``;
        the order as it now is, or None when its stock state had changed."""
        row = await self.db.write(
            _CHANGE_STOCK_STATE,
            {"b_order_id": order.id, "b_current": order.stock_state, "b_target": target},
            lambda result: result.first(),
        )
        return None if row is None else _order(row, (), order.items)

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
