"""The recommendation updater counts a received batch's orders together, in the
batch's transaction, exactly as it would count them one by one (both engines)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend.config import Config
from ec_recommend.consumers import recommendation
from ec_recommend.platform.events.envelope import Event
from ec_recommend.platform.events.handling import handle_batch
from ec_recommend.platform.events.inbox import ensure_inbox
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.services.recommendation.store import MIGRATIONS as REC_MIGRATIONS
from ec_recommend.services.recommendation.store import RecommendationStore
from ec_recommend.services.recommendation.tables import (
    cancelled_orders,
    co_purchases,
    item_stats,
    paid_orders,
    user_items,
)
from tests.integration.consumers.conftest import TransactionCount, event, order
from tests.integration.statement_count import statements_on

pytestmark = pytest.mark.asyncio

CONSUMER = "recommendation"
PRODUCTS = [f"p{n}" for n in range(6)]


def paid(lines: list[tuple[str, int]], user_id: str) -> Event:
    placed = order([(p, "s", q, 100) for p, q in lines], user_id=user_id, paid=True)
    return event("order.paid", pb_events.OrderPaid(order=placed, payment_id="p"))


def cancelled(of: Event) -> Event:
    return event("order.cancelled", pb_events.OrderCancelled(order=of.data.order, refunded=True))


def shop_history() -> list[Event]:
    """Paid orders over shared products in varying orders, with the awkward cases:
    an order paid again under another event id, a refund, a refund of an order
    paid in the same batch, and a cancellation that arrives before its payment."""
    orders = [
        paid([(PRODUCTS[(n + k) % 6], 1 + k) for k in range(1 + n % 3)], f"u{n % 4}")
        for n in range(12)
    ]
    late = paid([(PRODUCTS[0], 2)], "u9")
    return [
        cancelled(late),
        *orders[:6],
        event("order.paid", orders[2].data),  # the same order under another event id
        cancelled(orders[1]),
        *orders[6:],
        cancelled(orders[10]),
        late,
    ]


async def counts_of(db: Database) -> dict[str, Any]:
    """What the recommender reads (counters that are not zero) and the orders' markers.

    (An order paid then refunded may leave counters at zero and its lines, or
    no rows, depending on which event came first; both read the same.)"""
    async with db.reading() as conn:
        stats = (await conn.execute(sa.select(item_stats).where(item_stats.c.orders != 0))).all()
        pairs = await conn.execute(sa.select(co_purchases).where(co_purchases.c.orders != 0))
        history = await conn.execute(sa.select(user_items).where(user_items.c.purchased != 0))
        paid_ids = await conn.execute(sa.select(paid_orders.c.order_id))
        cancelled_ids = await conn.execute(sa.select(cancelled_orders.c.order_id))
        return {
            "stats": sorted((r.product_id, r.orders, r.quantity) for r in stats),
            "popularity": {r.product_id: r.popularity for r in stats},
            "pairs": sorted((r.product_id, r.other_id, r.orders) for r in pairs),
            "history": sorted((r.user_id, r.product_id, r.purchased) for r in history),
            "paid": sorted(r.order_id for r in paid_ids),
            "cancelled": sorted(r.order_id for r in cancelled_ids),
        }


def assert_same_counts(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    # Decayed popularity sums floats: the order of the additions shows in the last bits.
    assert actual.pop("popularity") == pytest.approx(expected.pop("popularity"))
    assert actual == expected


async def one_by_one(config: Config, events: list[Event]) -> dict[str, list[tuple[Any, ...]]]:
    """The counts as the store's own writers leave them, an event at a time."""
    async with open_database(config.storage, "recommendation_one_by_one", REC_MIGRATIONS) as db:
        store = RecommendationStore(db)
        for evt in events:
            data = evt.data.order
            if evt.type == "order.paid":
                lines = [(i.product_id, i.quantity) for i in data.items]
                await store.record_paid_order(data.id, data.user_id, lines, evt.timestamp)
            else:
                await store.record_cancelled_order(data.id)
        return await counts_of(db)


async def test_concurrent_batches_count_as_one_by_one_and_exactly_once(config: Config) -> None:
    events = shop_history()
    expected = await one_by_one(config, events)
    handlers = recommendation.RecommendationUpdater(None, None).handlers()  # type: ignore[arg-type]
    async with open_database(
        config.storage, recommendation.DATABASE, recommendation.MIGRATIONS
    ) as db:
        await ensure_inbox(db)
        transactions = TransactionCount(db)
        # Four batches at once: each locks the shared counter rows only when it
        # commits, in key order, so none deadlocks and falls back to an event
        # at a time (one transaction each).
        batches = [events[n::4] for n in range(4)]
        outcomes = await asyncio.gather(
            *(handle_batch(db, CONSUMER, handlers, batch) for batch in batches)
        )
        assert [o.status for batch in outcomes for o in batch] == ["handled"] * len(events)
        assert transactions.count == len(batches)
        assert_same_counts(await counts_of(db), dict(expected))

        # Redelivered, in one batch: every event is a duplicate, nothing moves.
        again = await handle_batch(db, CONSUMER, handlers, events)
        assert {o.status for o in again} == {"duplicates"}
        assert_same_counts(await counts_of(db), dict(expected))


async def test_a_bad_order_fails_alone_and_the_rest_count(config: Config) -> None:
    good = [paid([(PRODUCTS[n], 1), (PRODUCTS[n + 1], 2)], f"u{n}") for n in range(3)]
    bad = paid([(PRODUCTS[0], 0)], "u-bad")  # a line of no quantity
    handlers = recommendation.RecommendationUpdater(None, None).handlers()  # type: ignore[arg-type]
    async with open_database(
        config.storage, recommendation.DATABASE, recommendation.MIGRATIONS
    ) as db:
        await ensure_inbox(db)
        outcomes = await handle_batch(db, CONSUMER, handlers, [good[0], bad, *good[1:]])
        assert [o.status for o in outcomes] == ["handled", "failed", "handled", "handled"]
        store = RecommendationStore(db)
        assert await store.order_counts(PRODUCTS[:4]) == {"p0": 1, "p1": 2, "p2": 2, "p3": 1}
        assert not await store.paid_order_recorded(bad.data.order.id)


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_a_batch_costs_a_statement_a_step_not_five_an_order(config: Config) -> None:
    handlers = recommendation.RecommendationUpdater(None, None).handlers()  # type: ignore[arg-type]
    async with open_database(
        config.storage, recommendation.DATABASE, recommendation.MIGRATIONS
    ) as db:
        await ensure_inbox(db)
        warm = [paid([(PRODUCTS[0], 1)], "u")]
        await handle_batch(db, CONSUMER, handlers, warm)
        for size in (1, 4, 10):
            batch = [
                paid([(PRODUCTS[n % 5], 1), (PRODUCTS[n % 5 + 1], 1)], f"u{n}") for n in range(size)
            ]
            with statements_on(config.storage, recommendation.DATABASE) as seen:
                await handle_batch(db, CONSUMER, handlers, batch)
            # BEGIN, the inbox claim; the orders' markers, their lines, the
            # cancelled check; stats, pairs, history (SQLite's COMMIT is no
            # statement). Before, each order was five more and a transaction.
            assert dict(seen) == {"BEGIN": 1, "INSERT": 6, "SELECT": 1}, size
