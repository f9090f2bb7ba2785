#!/usr/bin/env python
"""Search latency: the trigram/tsvector index vs a LIKE scan, same data, same run.

Fills a fresh search index with N synthetic products (Japanese and English
names and descriptions), then runs the same queries through

  index  SearchIndex.search as served (SQLite FTS5 trigram + bm25, or
         PostgreSQL tsvector/pg_trgm + ts_rank)
  scan   the same query with the text match done by LIKE '%term%' over
         name || description, which no index serves (what substring search
         costs without the index)

and prints queries/s of each and the speed-up index/scan.
Usage: .venv/bin/python scripts/bench/search.py [--products 10000] [--queries 200]
       [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ec_recommend.config import StorageConfig
from ec_recommend.platform.paging import Page
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.services.search.domain import ProductSnapshot, SearchFilters, parse_terms
from ec_recommend.services.search.index import SearchIndex, open_search_index
from ec_recommend.services.search.tables import MIGRATIONS

KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"
LATIN = "abcdefghijklmnopqrstuvwxyz"


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    """Pseudo-words, half katakana and half latin, like a real catalogue's many terms."""
    words: set[str] = set()
    while len(words) < size:
        alphabet = KANA if len(words) % 2 else LATIN
        words.add("".join(rng.choice(alphabet) for _ in range(rng.randrange(3, 7))))
    return sorted(words)


def synthetic(count: int, rng: random.Random, words: list[str]) -> list[ProductSnapshot]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    products = []
    for i in range(count):
        # Japanese names glue words together; the search must find either part.
        name = "".join(rng.sample(words, 2)) + f" {rng.choice(words)} {i}"
        description = " ".join(rng.sample(words, 12))
        created = start + timedelta(seconds=i)
        price = rng.randrange(500, 50_000)
        products.append(
            ProductSnapshot(
                id=str(uuid.UUID(int=rng.getrandbits(128))),
                seller_id=f"seller-{i % 20}",
                name=name,
                description=description,
                currency="JPY",
                base_price=price,
                sale_price=None,
                stock=rng.randrange(0, 50),
                status="active",
                created_at=created,
                updated_at=created,
            )
        )
    return products


def scanning(index: SearchIndex) -> SearchIndex:
    """The same index with its text match replaced by an unindexable LIKE."""
    text = index.table.c.name_norm + " " + index.table.c.description_norm

    def like_only(terms: Sequence[str]) -> tuple[Any, list[Any], Any]:
        conditions = [text.contains(t, autoescape=True) for t in terms]
        return index.table, conditions, sa.literal(0.0, sa.Float)

    index._text_match = like_only  # type: ignore[method-assign]
    return index


async def analyze(db: Database) -> None:
    """What autovacuum would do after a bulk load: statistics, GIN pending lists."""
    if not db.is_postgres:
        async with db.unit_of_work() as uow:
            await uow.execute(sa.text("ANALYZE"))
            await uow.commit()
        return
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql(f'VACUUM ANALYZE "{db.schema}".search_documents')


async def measure(index: SearchIndex, queries: Sequence[str]) -> float:
    page = Page(1, 20, "relevance", False)
    started = time.perf_counter()
    for query in queries:
        terms = parse_terms(query)
        await index.search(terms, SearchFilters(), page)
    return len(queries) / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--postgres", default="", help="PostgreSQL URL (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        storage = StorageConfig(
            data_dir=Path(tmp),
            database_url=args.postgres or None,
            schema_prefix=f"bench{uuid.uuid4().hex[:8]}_",
        )
        async with open_database(storage, "search", MIGRATIONS) as db:
            try:
                rng = random.Random(7)
                words = vocabulary(rng)
                index = open_search_index(db)
                snapshots = synthetic(args.products, rng, words)
                for start in range(0, len(snapshots), 1000):  # one transaction per batch
                    async with db.unit_of_work() as uow:
                        for snapshot in snapshots[start : start + 1000]:
                            await index.upsert(snapshot, uow)
                        await uow.commit()
                await analyze(db)
                # Whole words, a word's inner part (a substring), two words.
                queries = [
                    rng.choice(("{0}", "{1}", "{0} {2}")).format(
                        rng.choice(words), rng.choice(words)[1:], rng.choice(words)
                    )
                    for _ in range(args.queries)
                ]
                await measure(index, queries[:10])  # warm caches
                indexed = await measure(index, queries)
                scanned = await measure(scanning(open_search_index(db)), queries)
            finally:
                if db.schema:
                    async with db.engine.begin() as conn:
                        await conn.execute(sa.text(f'DROP SCHEMA "{db.schema}" CASCADE'))
    print(f"engine={db.dialect} products={args.products} queries={args.queries}")
    print(f"index  {indexed:8.1f} queries/s")
    print(f"scan   {scanned:8.1f} queries/s")
    print(f"speed-up index/scan: {indexed / scanned:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
