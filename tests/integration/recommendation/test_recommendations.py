"""Recommendation quality on a fixed catalogue and order history, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from ec_recommend.config import StorageConfig
from ec_recommend.platform.errors import InvalidArgument, NotFound
from ec_recommend.platform.storage import open_database
from ec_recommend.services.recommendation import domain
from ec_recommend.services.recommendation.recommender import Recommender
from ec_recommend.services.recommendation.store import MIGRATIONS, RecommendationStore
from ec_recommend.services.search.domain import ProductSnapshot

pytestmark = pytest.mark.asyncio

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def product(pid: str, name: str, *, stock: int = 10, status: str = "active") -> ProductSnapshot:
    return ProductSnapshot(
        id=pid,
        seller_id="s1",
        name=name,
        description="",
        currency="JPY",
        base_price=1000,
        sale_price=None,
        stock=stock,
        status=status if stock > 0 or status == "archived" else "out_of_stock",
        created_at=NOW,
        updated_at=NOW,
    )


CATALOGUE = [
    product("A", "ワイヤレスイヤホン Pro"),
    product("B", "イヤホンケース"),
    product("C", "USB-C ケーブル"),  # in nearly every order
    product("D", "Bluetooth スピーカー"),
    product("E", "マグカップ"),
    product("X", "旧モデル イヤホン", status="archived"),
    product("Y", "イヤーピース", stock=0),
]

# n: A=5 B=3 C=8 D=3 E=2 X=1 Y=1.  co(A,B)=2 co(A,C)=3 co(A,D)=1 co(A,X)=1.
ORDERS = [
    ("o1", "u1", ["A", "B", "C"]),
    ("o2", "u2", ["A", "B", "C"]),
    ("o3", "u2", ["A", "C"]),
    ("o4", "u3", ["D", "C"]),
    ("o5", "u3", ["D", "C"]),
    ("o6", "u4", ["E", "C"]),
    ("o7", "u4", ["E", "C"]),
    ("o8", "u5", ["C"]),
    ("o9", "u5", ["A", "D"]),
    ("o10", "u6", ["B", "Y"]),
    ("o11", "u6", ["A", "X"]),
]


@pytest_asyncio.fixture
async def store(storage: StorageConfig) -> AsyncIterator[RecommendationStore]:
    async with open_database(storage, "recommendation", MIGRATIONS) as db:
        yield RecommendationStore(db)


@pytest_asyncio.fixture
async def history(store: RecommendationStore) -> Recommender:
    for snapshot in CATALOGUE:
        await store.upsert_product(snapshot)
    for order_id, user_id, items in ORDERS:
        assert await store.record_paid_order(order_id, user_id, [(p, 1) for p in items], NOW)
    return Recommender(store)


def ranked(items: list[tuple[ProductSnapshot, domain.Scored]]) -> list[tuple[str, str]]:
    return [(p.id, s.reason) for p, s in items]


async def test_bought_together_ranks_by_cosine_not_raw_counts(history: Recommender) -> None:
    items = await history.for_product("A", 3)
    # Raw counts would put C (3 co-purchases) first; C is in almost every order.
    assert ranked(items) == [
        ("B", domain.BOUGHT_TOGETHER),
        ("C", domain.BOUGHT_TOGETHER),
        ("D", domain.BOUGHT_TOGETHER),
    ]
    scores = [s.score for _, s in items]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(2 / (15**0.5))


async def test_never_the_item_itself_archived_or_out_of_stock(history: Recommender) -> None:
    for pid in ("A", "B", "C"):
        ids = {p.id for p, _ in await history.for_product(pid, 50)}
        assert pid not in ids
        assert not ids & {"X", "Y"}
    assert not {p.id for p, _ in await history.popular(50)} & {"X", "Y"}


async def test_for_you_excludes_purchases_and_uses_history(history: Recommender) -> None:
    items = await history.for_user("u1", 10)  # bought A, B, C
    # D: (cos(A,D) + cos(C,D)) / 3 = 0.222;  E: cos(C,E) / 3 = 0.167
    assert ranked(items) == [("D", domain.BASED_ON_HISTORY), ("E", domain.BASED_ON_HISTORY)]
    assert items[0][1].score == pytest.approx((1 / 15**0.5 + 2 / 24**0.5) / 3)


async def test_views_count_for_less_than_purchases(
    history: Recommender, store: RecommendationStore
) -> None:
    await store.record_view("u9", "E")
    items = await history.for_user("u9", 2)
    assert items[0][0].id == "C" and items[0][1].reason == domain.BASED_ON_HISTORY


async def test_anonymous_and_cold_start_users_get_popular(history: Recommender) -> None:
    popular = ranked(await history.popular(3))
    assert popular == [("C", "popular"), ("A", "popular"), ("B", "popular")]
    assert ranked(await history.for_user("", 3)) == popular
    assert ranked(await history.for_user("nobody", 3)) == popular


async def test_popularity_favours_recent_sales(store: RecommendationStore) -> None:
    for snapshot in CATALOGUE:
        await store.upsert_product(snapshot)
    await store.record_paid_order("old", "u", [("A", 3)], NOW - timedelta(days=60))
    await store.record_paid_order("new", "u", [("B", 2)], NOW)
    top = await store.popular(2, now=NOW)
    assert [s.product_id for s in top] == ["B", "A"]
    assert top[0].score == pytest.approx(2.0)
    assert top[1].score == pytest.approx(3 * 2 ** (-60 / domain.POPULARITY_HALF_LIFE_DAYS))


async def test_record_paid_order_is_idempotent(history: Recommender) -> None:
    store = history.store
    before = await store.popular(10, now=NOW)
    assert not await store.record_paid_order("o1", "u1", [("A", 1), ("B", 1), ("C", 1)], NOW)
    assert await store.popular(10, now=NOW) == before
    assert (await store.co_purchases(["A"]))["A"]["B"] == 2


async def test_concurrent_redelivery_counts_once(store: RecommendationStore) -> None:
    results = await asyncio.gather(
        *(store.record_paid_order("dup", "u", [("A", 1), ("B", 2)], NOW) for _ in range(5))
    )
    assert sorted(results) == [False] * 4 + [True]
    assert await store.order_counts(["A", "B"]) == {"A": 1, "B": 1}


async def test_cold_catalogue_recommends_similar_and_newest(store: RecommendationStore) -> None:
    for snapshot in CATALOGUE:
        await store.upsert_product(snapshot)
    recommender = Recommender(store)
    items = await recommender.for_product("A", 3)
    assert items[0][0].id == "B" and items[0][1].reason == domain.SIMILAR
    assert all(s.score > 0 for _, s in items)
    popular = await recommender.popular(10)
    assert {p.id for p, _ in popular} == {"A", "B", "C", "D", "E"}
    assert all(s.reason == domain.POPULAR and s.score > 0 for _, s in popular)


async def test_catalogue_changes_apply_newest_first(
    history: Recommender, store: RecommendationStore
) -> None:
    sold_out = replace(CATALOGUE[1], stock=0, status="out_of_stock", updated_at=NOW + timedelta(1))
    assert await store.upsert_product(sold_out)
    assert not await store.upsert_product(CATALOGUE[1])  # older: ignored
    assert "B" not in {p.id for p, _ in await history.for_product("A", 10)}


async def test_unknown_product_is_not_found(history: Recommender) -> None:
    with pytest.raises(NotFound):
        await history.for_product("missing", 5)


@pytest.mark.parametrize(
    "lines", [[], [("A", 0)], [("A", -1)], [("", 1)], [(f"p{i}", 1) for i in range(501)]]
)
async def test_malformed_orders_are_rejected_and_leave_nothing(
    store: RecommendationStore, lines: list[tuple[str, int]]
) -> None:
    with pytest.raises(InvalidArgument):
        await store.record_paid_order("bad", "u", lines, NOW)
    assert not await store.paid_order_recorded("bad")


async def test_writes_join_a_consumers_unit_of_work(store: RecommendationStore) -> None:
    """An event consumer records inside its own unit of work (with its inbox row)."""
    async with store.db.unit_of_work() as uow:
        assert await store.record_paid_order("o-x", "u", [("A", 1)], NOW, uow)
        assert await store.upsert_product(CATALOGUE[0], uow)
    assert not await store.paid_order_recorded("o-x")  # not committed: nothing stuck
    assert await store.product("A") is None
    async with store.db.unit_of_work() as uow:
        await store.record_paid_order("o-x", "u", [("A", 1)], NOW, uow)
        await uow.commit()
    assert await store.paid_order_recorded("o-x")


async def test_a_refunded_order_is_taken_back_out_once(
    history: Recommender, store: RecommendationStore
) -> None:
    before = await store.popular(10, now=NOW)
    assert await store.record_paid_order("refund", "u7", [("D", 5), ("E", 1)], NOW)
    assert (await store.popular(1, now=NOW))[0].product_id == "D"
    assert await store.record_cancelled_order("refund")
    assert not await store.record_cancelled_order("refund")  # redelivered: no-op
    after = await store.popular(10, now=NOW)
    assert [s.product_id for s in after] == [s.product_id for s in before]
    assert [s.score for s in after] == pytest.approx([s.score for s in before])
    assert (await store.co_purchases(["D"]))["D"].get("E", 0) == 0
    assert (await store.history("u7"))[0] == {}


async def test_cancellation_seen_before_payment_counts_nothing(
    store: RecommendationStore,
) -> None:
    assert not await store.record_cancelled_order("late")
    assert not await store.record_paid_order("late", "u", [("A", 1)], NOW)
    assert await store.order_counts(["A"]) == {}
