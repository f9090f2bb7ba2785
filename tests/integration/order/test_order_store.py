"""Writing an order on SQLite and PostgreSQL: its number, its lines and its
order.created event together or not at all; on PostgreSQL in one statement,
its number taken ahead from the sequence."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ec_recommend.config import StorageConfig
from ec_recommend.platform.events.outbox import outbox
from ec_recommend.platform.money import Money
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.services.order import domain, events
from ec_recommend.services.order.numbers import BLOCK
from ec_recommend.services.order.store import OrderStore
from ec_recommend.services.order.tables import MIGRATIONS, order_items, order_numbers, orders

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def db(storage: StorageConfig) -> AsyncIterator[Database]:
    async with open_database(storage, "order", MIGRATIONS) as database:
        yield database


def _lines(n: int) -> list[domain.Line]:
    return [
        domain.Line(str(uuid.uuid4()), f"seller-{i}", f"Tea {i}", i + 1, Money(100 * (i + 1)))
        for i in range(n)
    ]


async def _create(store: OrderStore, lines: list[domain.Line], **kwargs: Any) -> domain.Order:
    total = Money(sum(line.line_total.amount for line in lines))
    return await store.create(
        kwargs.get("order_id", str(uuid.uuid4())),
        "buyer-1",
        lines,
        total,
        created_event=kwargs.get("created_event", events.order_created_row),
    )


async def _rows_of(db: Database, order_id: str) -> dict[str, int]:
    async with db.reading() as conn:
        counted = {}
        for name, column in (
            ("numbers", order_numbers.c.order_id),
            ("orders", orders.c.id),
            ("lines", order_items.c.order_id),
        ):
            query = sa.select(sa.func.count()).where(column == order_id)
            counted[name] = (await conn.execute(query)).scalar_one()
        events_of = sa.select(sa.func.count()).where(outbox.c.body.contains(order_id))
        counted["events"] = (await conn.execute(events_of)).scalar_one()
    return counted


async def test_an_order_is_written_with_its_lines_and_its_event(db) -> None:
    store = OrderStore(db)
    for n in (1, 3, 100):
        order = await _create(store, _lines(n))
        assert await store.get(order.id) == order, "what was written is what it answered"
        assert await _rows_of(db, order.id) == {"numbers": 1, "orders": 1, "lines": n, "events": 1}
        async with db.reading() as conn:
            body = (
                await conn.execute(sa.select(outbox.c.body).where(outbox.c.body.contains(order.id)))
            ).scalar_one()
        assert order.order_number in body


async def test_a_create_that_fails_leaves_nothing_behind(db) -> None:
    """Its event's insert, the last of its writes, breaks a unique key: the
    number, the order and its lines go with it."""
    store = OrderStore(db)
    first = await _create(store, _lines(2))
    async with db.reading() as conn:
        taken = (await conn.execute(sa.select(outbox.c.id))).scalar_one()

    def clashing_event(order: domain.Order) -> dict[str, Any]:
        return {**events.order_created_row(order), "id": taken}

    doomed = str(uuid.uuid4())
    with pytest.raises(IntegrityError):
        await _create(store, _lines(3), order_id=doomed, created_event=clashing_event)
    assert await _rows_of(db, doomed) == {"numbers": 0, "orders": 0, "lines": 0, "events": 0}
    assert await _rows_of(db, first.id) == {"numbers": 1, "orders": 1, "lines": 2, "events": 1}
    again = await _create(store, _lines(1), order_id=doomed)  # the id is free for a retry
    assert await _rows_of(db, again.id) == {"numbers": 1, "orders": 1, "lines": 1, "events": 1}


@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
async def test_on_postgres_a_create_is_one_statement_numbered_ahead(db, monkeypatch) -> None:
    """No unit of work; numbers rise within a store, and a store started
    afresh (a restart) goes on above them, past the rest of the block."""
    store = OrderStore(db)

    def no_transaction() -> Any:
        raise AssertionError("the create opened a unit of work")

    monkeypatch.setattr(db, "unit_of_work", no_transaction)
    numbers = [int((await _create(store, _lines(2))).order_number[-6:]) for _ in range(BLOCK + 3)]
    assert numbers == sorted(set(numbers)), "unique and rising"
    restarted = OrderStore(db)
    after = int((await _create(restarted, _lines(1))).order_number[-6:])
    assert after > max(numbers)
