"""A charged attempt's PAID ending as one statement on PostgreSQL: the
order PAID, its attempt SUCCEEDED and order.paid recorded together, or
nothing at all, whatever a cancellation or a resolver does at the same time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from ec_recommend.config import StorageConfig
from ec_recommend.platform.events.outbox import outbox
from ec_recommend.platform.money import Money
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.services.order import domain, events
from ec_recommend.services.order.ledger import AttemptEnded, Ledger, Payment
from ec_recommend.services.order.store import OrderStore
from ec_recommend.services.order.tables import FAILED, MIGRATIONS, PROCESSING, SUCCEEDED

pytestmark = [pytest.mark.asyncio, pytest.mark.parametrize("storage", ["postgres"], indirect=True)]


@pytest_asyncio.fixture
async def db(storage: StorageConfig) -> AsyncIterator[Database]:
    async with open_database(storage, "order", MIGRATIONS) as database:
        yield database


async def _charging(db: Database) -> tuple[domain.Order, Payment]:
    """A new order with an attempt started (PROCESSING), as a payment leaves them."""
    line = domain.Line(str(uuid.uuid4()), "seller-1", "Tea", 2, Money(600))
    order = await OrderStore(db).create(
        str(uuid.uuid4()), "buyer-1", [line], Money(1200), created_event=events.order_created_row
    )
    started = (await Ledger(db).begin_attempt(order.id, order.total)).started
    assert started is not None
    return order, started


async def _state(db: Database, order: domain.Order, payment: Payment) -> tuple[str, str, int]:
    """The order's status, the attempt's, and how many order.paid events it has."""
    async with db.reading() as conn:
        paid_events = (
            await conn.execute(
                sa.select(sa.func.count()).where(
                    outbox.c.event_type == "order.paid", outbox.c.body.contains(order.id)
                )
            )
        ).scalar_one()
    return (
        (await OrderStore(db).get(order.id)).status,
        (await Ledger(db).payment(payment.id)).status,
        paid_events,
    )


def _pay(db: Database, order: domain.Order, payment: Payment) -> Any:
    return Ledger(db).pay_at_once(order, payment.id, "ch_1", events.order_paid_row)


async def test_paid_with_its_attempt_and_event_in_one_statement(db, monkeypatch) -> None:
    order, payment = await _charging(db)

    def no_transaction() -> Any:
        raise AssertionError("the payment opened a unit of work")

    monkeypatch.setattr(db, "unit_of_work", no_transaction)
    paid = await _pay(db, order, payment)
    monkeypatch.undo()
    assert (paid.status, paid.payment_id, paid.stock_state) == (
        domain.PAID,
        payment.id,
        domain.STOCK_RESERVED,
    )
    assert await OrderStore(db).get(order.id) == paid, "what it answered is what is stored"
    assert await _state(db, order, payment) == (domain.PAID, SUCCEEDED, 1)
    assert (await Ledger(db).payment(payment.id)).provider_payment_id == "ch_1"


async def test_a_cancelled_order_or_an_ended_attempt_changes_nothing(db) -> None:
    order, payment = await _charging(db)
    cancelled = await OrderStore(db).change_status(
        order.id, domain.PENDING_PAYMENT, domain.CANCELLED, on_changed=_no_event
    )
    assert cancelled is not None
    assert await _pay(db, order, payment) is None
    assert await _state(db, order, payment) == (domain.CANCELLED, PROCESSING, 0)

    order, payment = await _charging(db)
    assert await Ledger(db).fail(payment.id, declined=False, reason="resolved elsewhere")
    with pytest.raises(AttemptEnded):
        await _pay(db, order, payment)
    assert await _state(db, order, payment) == (domain.PENDING_PAYMENT, FAILED, 0)


async def test_racing_a_cancellation_or_a_resolver_both_land_or_neither(db) -> None:
    """Run against each concurrent end many times: the order is PAID with its
    attempt SUCCEEDED and one event, or neither changed by the payment."""
    outcomes: set[tuple[str, str, int]] = set()
    for n in range(12):
        order, payment = await _charging(db)
        cancel = OrderStore(db).change_status(
            order.id, domain.PENDING_PAYMENT, domain.CANCELLED, on_changed=_no_event
        )
        await _race(_pay(db, order, payment), cancel, first=n % 2)
        outcomes.add(await _state(db, order, payment))

        order, payment = await _charging(db)
        resolve = Ledger(db).fail(payment.id, declined=False, reason="resolved elsewhere")
        await _race(_pay(db, order, payment), resolve, first=n % 2)
        outcomes.add(await _state(db, order, payment))
    assert outcomes <= {
        (domain.PAID, SUCCEEDED, 1),
        (domain.CANCELLED, PROCESSING, 0),
        (domain.PENDING_PAYMENT, FAILED, 0),
    }, outcomes


async def _race(pay: Any, other: Any, *, first: int) -> None:
    """Both at once, started in either order (errors are the losers' answers)."""
    racers = [pay, other] if first == 0 else [other, pay]
    await asyncio.gather(*racers, return_exceptions=True)


async def _no_event(*_: object) -> None:
    return None
