"""Search quality on a small fixed catalogue, on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from ec_recommend.config import StorageConfig
from ec_recommend.platform.paging import Page
from ec_recommend.platform.storage import open_database
from ec_recommend.services.search.domain import ProductSnapshot, SearchFilters, parse_terms
from ec_recommend.services.search.index import SearchIndex, open_search_index
from ec_recommend.services.search.tables import MIGRATIONS

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def product(
    pid: str,
    name: str,
    description: str = "",
    *,
    price: int = 1000,
    sale: int | None = None,
    stock: int = 10,
    seller: str = "s1",
    age_days: int = 0,
    status: str = "",
) -> ProductSnapshot:
    created = T0 - timedelta(days=age_days)
    return ProductSnapshot(
        id=pid,
        seller_id=seller,
        name=name,
        description=description,
        currency="JPY",
        base_price=price,
        sale_price=sale,
        stock=stock,
        status=status or ("active" if stock > 0 else "out_of_stock"),
        created_at=created,
        updated_at=created,
    )


CATALOGUE = [
    product(
        "p-earbuds-pro", "ワイヤレスイヤホン Pro", "ノイズキャンセリング", price=19800, sale=16800
    ),
    product("p-earbuds-lite", "ワイヤレスイヤホン Lite", "軽量モデル", price=7980, age_days=1),
    product(
        "p-speaker", "Bluetooth Speaker", "pairs with any earbuds case", price=9800, age_days=2
    ),
    product("p-earbuds", "Earbuds", "true wireless", price=5000, seller="s2", age_days=3),
    product("p-case", "Charging case", "fits Earbuds and more", price=1500, stock=0, age_days=4),
    product("p-mouse", "ワイヤレスマウス", "静音クリック", price=2980, sale=2480, age_days=5),
    product("p-kettle", "ケトル", "細口", price=4280, seller="s2", age_days=6),
]


@pytest_asyncio.fixture
async def index(storage: StorageConfig) -> AsyncIterator[SearchIndex]:
    async with open_database(storage, "search", MIGRATIONS) as db:
        search_index = open_search_index(db)
        for snapshot in CATALOGUE:
            assert await search_index.upsert(snapshot)
        yield search_index


def page(size: int = 20, sort_by: str = "relevance", descending: bool = False) -> Page:
    return Page(1, size, sort_by, descending)


async def ids(index: SearchIndex, *terms: str, **filters: object) -> list[str]:
    query = parse_terms(" ".join(terms))
    hits, _ = await index.search(query, SearchFilters(**filters), page())  # type: ignore[arg-type]
    return [hit.product.id for hit in hits]


async def test_exact_name_ranks_above_description_only_hits(index: SearchIndex) -> None:
    hits, total = await index.search(("earbuds",), SearchFilters(), page())
    assert hits[0].product.id == "p-earbuds"
    assert total == 3
    assert hits[0].score > hits[1].score
    assert {h.product.id for h in hits[1:]} == {"p-speaker", "p-case"}


async def test_japanese_substring_of_a_word_is_found(index: SearchIndex) -> None:
    assert set(await ids(index, "イヤホン")) == {"p-earbuds-pro", "p-earbuds-lite"}
    assert set(await ids(index, "ワイヤレス")) == {"p-earbuds-pro", "p-earbuds-lite", "p-mouse"}
    # Two characters: shorter than a trigram, found by the LIKE fallback.
    assert await ids(index, "ケト") == ["p-kettle"]
    assert await ids(index, "ｲﾔﾎﾝ", "pro") == ["p-earbuds-pro"]  # half-width kana, NFKC


async def test_every_term_must_match(index: SearchIndex) -> None:
    assert await ids(index, "イヤホン", "lite") == ["p-earbuds-lite"]
    assert await ids(index, "イヤホン", "nothing-like-this") == []


async def test_price_filters_use_the_sale_price(index: SearchIndex) -> None:
    assert set(await ids(index, "ワイヤレス", max_price=16800)) == {
        "p-earbuds-pro",
        "p-earbuds-lite",
        "p-mouse",
    }
    assert set(await ids(index, "ワイヤレス", min_price=2500, max_price=16799)) == {
        "p-earbuds-lite"
    }


async def test_seller_and_in_stock_filters(index: SearchIndex) -> None:
    assert await ids(index, "earbuds", seller_id="s2") == ["p-earbuds"]
    assert "p-case" not in await ids(index, "earbuds", in_stock=True)
    assert len(await ids(index)) == len(CATALOGUE)
    assert "p-case" not in await ids(index, in_stock=True)


@pytest.mark.parametrize(
    ("sort_by", "descending", "expected"),
    [
        ("price", False, ["p-case", "p-mouse", "p-kettle", "p-earbuds"]),
        ("price", True, ["p-earbuds-pro", "p-speaker", "p-earbuds-lite", "p-earbuds"]),
        ("created_at", True, ["p-earbuds-pro", "p-earbuds-lite", "p-speaker", "p-earbuds"]),
        ("created_at", False, ["p-kettle", "p-mouse", "p-case", "p-earbuds"]),
        ("name", False, ["p-speaker", "p-case", "p-earbuds", "p-kettle"]),
    ],
)
async def test_sorting(
    index: SearchIndex, sort_by: str, descending: bool, expected: list[str]
) -> None:
    hits, total = await index.search((), SearchFilters(), page(4, sort_by, descending))
    assert [h.product.id for h in hits] == expected
    assert total == len(CATALOGUE)


async def test_paging_is_stable_and_complete(index: SearchIndex) -> None:
    seen: list[str] = []
    for number in (1, 2, 3):
        hits, total = await index.search((), SearchFilters(), Page(number, 3, "price", False))
        seen += [h.product.id for h in hits]
        assert total == len(CATALOGUE)
    assert sorted(seen) == sorted(p.id for p in CATALOGUE)


async def test_archived_products_disappear_and_stale_snapshots_are_ignored(
    index: SearchIndex,
) -> None:
    original = CATALOGUE[0]
    archived = replace(original, status="archived", updated_at=T0 + timedelta(hours=1))
    assert await index.upsert(archived)
    assert "p-earbuds-pro" not in await ids(index, "イヤホン")
    # A late, older event must not bring it back.
    assert not await index.upsert(original)
    assert "p-earbuds-pro" not in await ids(index, "イヤホン")
    renamed = replace(
        original, name="ノイズキャンセル ヘッドホン", updated_at=T0 + timedelta(hours=2)
    )
    assert await index.upsert(renamed)
    assert await ids(index, "ヘッドホン") == ["p-earbuds-pro"]
    assert "p-earbuds-pro" not in await ids(index, "イヤホン")


async def test_upsert_is_idempotent_and_remove_deletes(index: SearchIndex) -> None:
    assert await index.upsert(CATALOGUE[1])  # the same snapshot again: applied, no duplicate
    assert sorted(await ids(index, "イヤホン")) == ["p-earbuds-lite", "p-earbuds-pro"]
    await index.remove("p-earbuds-lite")
    assert await ids(index, "イヤホン") == ["p-earbuds-pro"]
    assert await index.get("p-earbuds-lite") is None


async def test_query_text_is_data_not_syntax(index: SearchIndex) -> None:
    for hostile in ('"', "zz OR qq", "NEAR(zz qq)", "100%", "_", "'; DROP TABLE x; --", "*"):
        assert await ids(index, hostile) == []


async def test_upsert_joins_a_consumers_unit_of_work(index: SearchIndex) -> None:
    newer = replace(CATALOGUE[-1], name="ミルクパン", updated_at=T0 + timedelta(days=1))
    async with index.db.unit_of_work() as uow:
        assert await index.upsert(newer, uow)
    assert await ids(index, "ミルクパン") == []  # rolled back with the consumer's work
    async with index.db.unit_of_work() as uow:
        assert await index.upsert(newer, uow)
        await uow.commit()
    assert await ids(index, "ミルクパン") == ["p-kettle"]
