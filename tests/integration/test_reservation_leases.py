"""Reservation leases on SQLite and PostgreSQL: an expired reservation returns
its units exactly once, a confirmed one is held, and concurrent sweeps (two
product replicas on one database) never return a unit twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import StorageConfig
from ec_recommend.platform import errors
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.events.outbox import outbox
from ec_recommend.platform.money import Money
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.platform.storage.database import Migration, create_tables
from ec_recommend.services.product import store as product_store
from ec_recommend.services.product.leases import Lease, Leases
from ec_recommend.services.product.service import ProductService
from ec_recommend.services.product.store import EXPIRED, RELEASED, RESERVED, ProductStore

pytestmark = pytest.mark.asyncio

LATER = timedelta(minutes=10)


@pytest_asyncio.fixture
async def db(storage: StorageConfig) -> AsyncIterator[Database]:
    async with open_database(storage, "product", product_store.MIGRATIONS) as database:
        yield database


async def _product(store: ProductStore, stock: int = 10) -> str:
    product = await store.create(
        seller_id="s-1",
        name="Tea",
        description="",
        base_price=Money(1000),
        sale_price=None,
        stock=stock,
        images=(),
    )
    return product.id


async def _levels(store: ProductStore, product_id: str) -> tuple[int, int]:
    product = await store.get(product_id)
    return product.available, product.reserved


async def test_an_unconfirmed_reservation_expires_once_and_returns_its_units(db) -> None:
    store = ProductStore(db, reservation_lease=60)
    tea, cup = await _product(store), await _product(store)
    await store.reserve("order-1", [(tea, 3), (cup, 1)])
    leases = Leases(db)
    assert await leases.expire_due() == []  # the lease still runs
    assert await _levels(store, tea) == (7, 3)

    assert await leases.expire_due(utcnow() + LATER) == ["order-1"]
    assert await leases.expire_due(utcnow() + LATER) == []  # never twice
    assert await _levels(store, tea) == (10, 0)
    assert await _levels(store, cup) == (10, 0)
    assert (await store.reservation("order-1")).state == EXPIRED
    # Its order's own release, arriving late, finds nothing more to give back.
    assert (await store.transition("order-1", RELEASED)).state == RELEASED
    assert await _levels(store, tea) == (10, 0)
    assert await Leases(db).expire_due(utcnow() + LATER) == []


async def test_an_order_paid_after_its_lease_ran_out_takes_its_units_again(db) -> None:
    store = ProductStore(db, reservation_lease=1)
    tea, cup = await _product(store, stock=3), await _product(store, stock=3)
    await store.reserve("late", [(tea, 2), (cup, 1)])
    await store.reserve("too-late", [(tea, 1), (cup, 1)])
    assert sorted(await Leases(db).expire_due(utcnow() + LATER)) == ["late", "too-late"]
    await store.reserve("meanwhile", [(tea, 2)])  # someone else bought the units

    for _ in range(2):
        paid = await store.transition("too-late", product_store.COMMITTED)
        assert paid.state == product_store.COMMITTED
    with pytest.raises(errors.FailedPrecondition) as gone:
        await store.transition("late", product_store.COMMITTED)
    assert gone.value.details["reason"] == "reservation_expired"
    assert gone.value.details["product_id"] == tea
    assert (await store.reservation("late")).state == EXPIRED  # nothing moved
    assert (await store.get(tea)).available == 0
    assert (await store.get(cup)).available == 2
    tea_now = await store.get(tea)
    assert (tea_now.available, tea_now.reserved) == (0, 2)  # "meanwhile" holds 2, 1 sold


async def test_a_confirmed_reservation_is_held_until_its_hold_runs_out(db) -> None:
    store = ProductStore(db, reservation_lease=1)
    tea = await _product(store)
    await store.reserve("order-1", [(tea, 2)])
    leases = Leases(db)
    hold = utcnow() + LATER
    assert await leases.confirm("order-1", hold) == Lease(RESERVED, hold)
    shorter = await leases.confirm("order-1", hold - timedelta(minutes=5))
    assert shorter.state == RESERVED and shorter.expires_at is not None
    assert abs(shorter.expires_at - hold) < timedelta(seconds=1)  # never shortened
    assert await leases.expire_due(utcnow() + timedelta(minutes=9)) == []
    assert await _levels(store, tea) == (8, 2)
    expires = (await store.reservation("order-1")).expires_at
    assert expires is not None and abs(expires - hold) < timedelta(seconds=1)

    assert await leases.expire_due(hold + timedelta(seconds=1)) == ["order-1"]
    assert await _levels(store, tea) == (10, 0)
    with pytest.raises(errors.FailedPrecondition) as expired:
        await leases.confirm("order-1", hold + LATER)
    assert expired.value.details["reason"] == "reservation_expired"
    await store.reserve("order-3", [(tea, 1)])
    await store.transition("order-3", RELEASED)
    with pytest.raises(errors.FailedPrecondition) as released:
        await leases.confirm("order-3", hold)
    assert released.value.details["reason"] == "reservation_released"
    with pytest.raises(errors.NotFound):
        await leases.confirm("order-2", hold)


async def test_a_committed_reservation_never_expires(db) -> None:
    store = ProductStore(db, reservation_lease=1)
    tea = await _product(store)
    await store.reserve("order-1", [(tea, 2)])
    await store.transition("order-1", product_store.COMMITTED)
    assert await Leases(db).expire_due(utcnow() + LATER) == []
    product = await store.get(tea)
    assert (product.available, product.reserved) == (8, 0)
    confirmed = await Leases(db).confirm("order-1", utcnow() + LATER)
    assert confirmed == Lease(product_store.COMMITTED, None)


async def test_concurrent_sweeps_return_each_unit_once(storage: StorageConfig) -> None:
    # Two replicas: two engines (pools) on one database, sweeping at once.
    async with (
        open_database(storage, "product", product_store.MIGRATIONS) as first,
        open_database(storage, "product", product_store.MIGRATIONS) as second,
    ):
        store = ProductStore(first, reservation_lease=1)
        tea = await _product(store, stock=100)
        for n in range(40):
            await store.reserve(f"order-{n}", [(tea, 2)])
        sweeps = [Leases(db).expire_due(utcnow() + LATER) for db in (first, second) * 2]
        results = await asyncio.gather(*sweeps)
        swept = [rid for result in results for rid in result]
        assert sorted(swept) == sorted(f"order-{n}" for n in range(40))
        assert await _levels(store, tea) == (100, 0)


async def test_confirmation_racing_the_sweep_either_holds_or_fails(db) -> None:
    store = ProductStore(db, reservation_lease=1)
    tea = await _product(store, stock=100)
    for n in range(20):
        await store.reserve(f"order-{n}", [(tea, 1)])
    leases = Leases(db)
    now = utcnow() + timedelta(seconds=30)

    async def confirm(n: int) -> bool:
        try:
            await leases.confirm(f"order-{n}", now + LATER)
        except errors.FailedPrecondition:
            return False
        return True

    swept, *confirmed = await asyncio.gather(
        leases.expire_due(now), *(confirm(n) for n in range(20))
    )
    held = {f"order-{n}" for n, ok in enumerate(confirmed) if ok}
    assert held.isdisjoint(swept) and len(held) + len(swept) == 20
    assert await _levels(store, tea) == (100 - len(held), len(held))


async def test_an_existing_database_gains_leases_and_keeps_its_reservations(
    storage: StorageConfig,
) -> None:
    # The schema before leases: version 2, reservations without expires_at.
    old = sa.MetaData()
    for table in product_store.metadata.tables.values():
        if table is not product_store.reservations:
            table.to_metadata(old)
    sa.Table(
        "stock_reservations",
        old,
        sa.Column("reservation_id", sa.String(100), primary_key=True),
        sa.Column("product_id", sa.String(36), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    before = [Migration(1, create_tables(old)), product_store.MIGRATIONS[1]]
    async with open_database(storage, "product", before) as db, db.unit_of_work() as uow:
        now = utcnow()
        await uow.execute(
            sa.insert(old.tables["products"]).values(
                id="p-1",
                seller_id="s-1",
                name="Tea",
                description="",
                currency="JPY",
                base_price=1000,
                available=8,
                reserved=2,
                sold=0,
                status="active",
                images=[],
                created_at=now,
                updated_at=now,
            )
        )
        await uow.execute(
            sa.insert(old.tables["stock_reservations"]).values(
                reservation_id="legacy",
                product_id="p-1",
                quantity=2,
                state=RESERVED,
                updated_at=now,
            )
        )
        await uow.commit()
    async with open_database(storage, "product", product_store.MIGRATIONS) as db:
        store = ProductStore(db)
        # Reserved before leases existed: held until its order moves it.
        assert await Leases(db).expire_due(utcnow() + LATER) == []
        await store.reserve("new", [("p-1", 1)])
        assert (await store.reservation("new")).expires_at is not None
        assert await Leases(db).expire_due(utcnow() + LATER) == ["new"]
        assert (await store.transition("legacy", RELEASED)).state == RELEASED
        assert await _levels(store, "p-1") == (10, 0)


async def test_each_move_answers_with_the_stock_it_left(db) -> None:
    """ReserveStock and the moves answer with every reserved product's stock
    after the move, in product id order, and the lease only while reserved;
    a replay answers as the first call did."""
    store = ProductStore(db, reservation_lease=60)
    service = ProductService(store)
    tea, cup = await _product(store, stock=3), await _product(store, stock=5)

    def reserve(reservation_id: str, *lines: tuple[str, int]) -> Any:
        return service.reserve_stock(
            pb.ReserveStockRequest(
                reservation_id=reservation_id,
                lines=[pb.StockLine(product_id=p, quantity=q) for p, q in lines],
            )
        )

    def request(reservation_id: str) -> pb.ReservationRequest:
        return pb.ReservationRequest(reservation_id=reservation_id)

    def stock(response: pb.ReserveStockResponse) -> list[tuple[str, int, int]]:
        """Expected in product id order: ``sorted(...)``."""
        return [(s.product_id, s.available_stock, s.reserved_stock) for s in response.stock]

    reserved = await reserve("o-1", (cup, 2), (tea, 1), (cup, 1))
    assert (reserved.reservation_id, reserved.state) == ("o-1", RESERVED)
    assert stock(reserved) == sorted([(tea, 2, 1), (cup, 2, 3)])
    assert reserved.expires_at == (await store.reservation("o-1")).expires_at
    assert reserved.expires_at is not None
    # ReserveStock's answer carries the products themselves (the caller prices from them).
    assert [(p.id, p.stock_quantity, p.base_price.amount) for p in reserved.products] == sorted(
        [(tea, 2, 1000), (cup, 2, 1000)]
    )
    assert await reserve("o-1", (cup, 2), (tea, 1), (cup, 1)) == reserved  # a replay

    committed = await service.commit_stock(request("o-1"))
    assert (committed.state, committed.expires_at) == (product_store.COMMITTED, None)
    assert stock(committed) == sorted([(tea, 2, 0), (cup, 2, 0)])
    assert committed.products == []  # the other calls answer with stock levels only
    assert await service.commit_stock(request("o-1")) == committed
    restocked = await service.restock_reservation(request("o-1"))
    assert (restocked.state, restocked.expires_at) == (product_store.RESTOCKED, None)
    assert stock(restocked) == sorted([(tea, 3, 0), (cup, 5, 0)])
    with pytest.raises(errors.FailedPrecondition):
        await service.release_stock(request("o-1"))

    await reserve("o-2", (tea, 1))
    released = await service.release_stock(request("o-2"))
    assert (released.state, stock(released)) == (RELEASED, [(tea, 3, 0)])
    await reserve("o-3", (tea, 2), (cup, 1))
    await reserve("o-4", (tea, 1))
    assert sorted(await Leases(db).expire_due(utcnow() + LATER)) == ["o-3", "o-4"]
    late_release = await service.release_stock(request("o-4"))  # the lease gave them back
    assert (late_release.state, stock(late_release)) == (RELEASED, [(tea, 3, 0)])
    await reserve("o-5", (cup, 1))
    retaken = await service.commit_stock(request("o-3"))  # paid late: taken again
    assert (retaken.state, retaken.expires_at) == (product_store.COMMITTED, None)
    assert stock(retaken) == sorted([(tea, 1, 0), (cup, 3, 1)])
    assert await service.commit_stock(request("o-3")) == retaken
    with pytest.raises(errors.NotFound):
        await service.commit_stock(request("o-6"))


async def test_a_repeated_reservation_id_takes_nothing_more(db) -> None:
    """A replay of a reservation id answers its state, whatever lines it names:
    none is added, no stock moves, and a line that would be short is no error."""
    store = ProductStore(db, reservation_lease=60)
    tea, cup, jug = [await _product(store, stock=n) for n in (3, 5, 1)]
    assert (await store.reserve("r-1", [(tea, 2)])).state == RESERVED
    for lines in ([(tea, 2)], [(cup, 1)], [(jug, 4)], [(tea, 1), (cup, 1)], [(cup, 1), (jug, 1)]):
        assert await store.reserve("r-1", lines) == product_store.Outcome(RESERVED), lines
    assert (await store.reservation("r-1")).product_ids == [tea]
    assert [await _levels(store, p) for p in (tea, cup, jug)] == [(1, 2), (5, 0), (1, 0)]

    await store.transition("r-1", product_store.COMMITTED)
    assert await store.reserve("r-1", [(cup, 1)]) == product_store.Outcome(product_store.COMMITTED)
    assert [await _levels(store, p) for p in (tea, cup, jug)] == [(1, 0), (5, 0), (1, 0)]

    # A new id short of stock is still told why, and reserves none of its lines.
    with pytest.raises(errors.FailedPrecondition) as short:
        await store.reserve("r-2", [(cup, 1), (jug, 4)])
    assert short.value.details["reason"] == "insufficient_stock"
    assert [await _levels(store, p) for p in (cup, jug)] == [(5, 0), (1, 0)]


async def test_racing_commits_and_releases_move_a_reservations_units_once(db) -> None:
    """A payment's commit racing a cancellation's release (and their retries):
    one of them moves the units, the others see its state; no unit is lost
    or counted twice, on either engine."""
    store = ProductStore(db, reservation_lease=60)
    tea, cup = await _product(store, stock=10), await _product(store, stock=20)
    for n in range(6):
        reservation_id = f"race-{n}"
        await store.reserve(reservation_id, [(tea, 1), (cup, 2)])
        moves = [product_store.COMMITTED, RELEASED] * 2
        outcomes = await asyncio.gather(
            *(store.transition(reservation_id, move) for move in moves), return_exceptions=True
        )
        final = (await store.reservation(reservation_id)).state
        assert final in (product_store.COMMITTED, RELEASED)
        moved = [o for o in outcomes if isinstance(o, product_store.Outcome) and o.products]
        assert len(moved) == 1, outcomes
        for outcome in outcomes:  # each the winner's state, as an answer or as the refusal
            if isinstance(outcome, product_store.Outcome):
                assert outcome.state == final, outcomes
            else:
                assert isinstance(outcome, errors.FailedPrecondition), outcomes
                assert outcome.details["state"] == final, outcomes
    async with db.reading() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    product_store.products.c.id,
                    product_store.products.c.available,
                    product_store.products.c.reserved,
                    product_store.products.c.sold,
                )
            )
        ).all()
    for product_id, available, reserved, sold in rows:
        assert reserved == 0
        assert available + sold == (10 if product_id == tea else 20), "stock conserved"


@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
async def test_a_commit_is_one_statement_on_postgres(db, monkeypatch) -> None:
    """CommitStock of a reserved reservation opens no transaction there: its
    state change and every line's move are one statement."""
    store = ProductStore(db, reservation_lease=60)
    tea, cup = await _product(store, stock=3), await _product(store, stock=5)
    await store.reserve("one", [(cup, 2), (tea, 1)])

    def no_transaction() -> Any:
        raise AssertionError("the commit opened a unit of work")

    monkeypatch.setattr(db, "unit_of_work", no_transaction)
    committed = await store.transition("one", product_store.COMMITTED)
    assert committed.state == product_store.COMMITTED
    assert [(p.id, p.available, p.reserved) for p in committed.products or []] == sorted(
        [(tea, 2, 0), (cup, 3, 0)]
    )
    monkeypatch.undo()
    assert (await store.reservation("one")).state == product_store.COMMITTED
    assert [await _levels(store, p) for p in (tea, cup)] == [(2, 0), (3, 0)]


async def test_concurrent_reservations_under_one_id_take_the_units_once(db) -> None:
    """A retried ReserveStock racing its first try (one line, as a checkout
    of one product makes it): one takes the units, the others answer its
    state; on PostgreSQL both the one-statement way and the transaction's."""
    store = ProductStore(db, reservation_lease=60)
    tea = await _product(store, stock=10)
    for n, quantity in enumerate((1, 2, 7)):  # 7, the last units: the transaction's way
        outcomes = await asyncio.gather(
            *(store.reserve(f"same-{n}", [(tea, quantity)]) for _ in range(5))
        )
        assert {o.state for o in outcomes} == {RESERVED}
        assert sum(1 for o in outcomes if o.products) == 1, outcomes
    assert await _levels(store, tea) == (0, 10)


@pytest.mark.parametrize("storage", ["postgres"], indirect=True)
async def test_a_one_line_reservation_is_one_statement_unless_it_sells_out(db, monkeypatch) -> None:
    """On PostgreSQL a one-line reservation that leaves units on sale opens no
    transaction; one that takes the last unit takes the transaction, which
    records product.out_of_stock with the move."""
    store = ProductStore(db, reservation_lease=60)
    tea = await _product(store, stock=3)
    real_unit_of_work = db.unit_of_work
    opened: list[str] = []

    def counted() -> Any:
        opened.append("unit of work")
        return real_unit_of_work()

    monkeypatch.setattr(db, "unit_of_work", counted)
    reserved = await store.reserve("first", [(tea, 2)])
    assert (reserved.state, [p.available for p in reserved.products or []]) == (RESERVED, [1])
    assert reserved.expires_at == (await store.reservation("first")).expires_at
    assert opened == []
    assert await store.reserve("first", [(tea, 2)]) == product_store.Outcome(RESERVED)  # a replay
    assert await _levels(store, tea) == (1, 2)
    opened.clear()
    last = await store.reserve("last", [(tea, 1)])
    assert [p.status for p in last.products or []] == ["out_of_stock"]
    assert opened == ["unit of work"]
    async with db.reading() as conn:
        sold_out = (
            await conn.execute(
                sa.select(sa.func.count()).where(outbox.c.event_type == "product.out_of_stock")
            )
        ).scalar_one()
    assert sold_out == 1
