"""The recommendation data: order counts (``counts.OrderCounts``), user views,
a catalogue snapshot for availability and text similarity, and their reads.

Writers are the paid-order feed (see ``counts``), views (``record_view``) and
the product feed (``upsert_product``, newest snapshot wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.platform.storage import PerDialect, UnitOfWork, dialect_insert, writing
from ec_recommend.services.recommendation import domain
from ec_recommend.services.recommendation.counts import OrderCounts
from ec_recommend.services.recommendation.tables import (
    MIGRATIONS,
    catalogue,
    co_purchases,
    item_stats,
    user_items,
)
from ec_recommend.services.search.domain import ProductSnapshot
from ec_recommend.services.search.snapshot_rows import snapshot_from_row, snapshot_values

__all__ = ["MIGRATIONS", "RecommendationStore"]

MAX_NEIGHBOURS = 1000
MAX_SIMILAR_CANDIDATES = 5000
_AVAILABLE = (catalogue.c.status == "active", catalogue.c.stock > 0)


def _add_view(dialect: str) -> Any:
    insert = dialect_insert(dialect, user_items)
    return insert.on_conflict_do_update(
        index_elements=[user_items.c.user_id, user_items.c.product_id],
        set_={"views": user_items.c.views + 1, "last_at": insert.excluded.last_at},
    )


def _upsert_product(dialect: str) -> Any:
    """Every column from the row offered, unless the stored one is newer."""
    insert = dialect_insert(dialect, catalogue)
    return insert.on_conflict_do_update(
        index_elements=[catalogue.c.product_id],
        set_={c.name: insert.excluded[c.name] for c in catalogue.c if c.name != "product_id"},
        where=catalogue.c.updated_at <= insert.excluded.updated_at,
    )


_ADD_VIEW = PerDialect(_add_view)
_UPSERT_PRODUCT = PerDialect(_upsert_product)


class RecommendationStore(OrderCounts):
    """Order counts (``OrderCounts``), views, the catalogue, and the reads of all three."""

    async def record_view(
        self, user_id: str, product_id: str, uow: UnitOfWork | None = None
    ) -> None:
        if not user_id or not product_id:
            raise InvalidArgument("user_id and product_id are required", field="product_id")
        view = {
            "user_id": user_id,
            "product_id": product_id,
            "purchased": 0,
            "views": 1,
            "last_at": utcnow(),
        }
        async with writing(self.db, uow) as work:
            await work.execute(_ADD_VIEW(work.dialect), view)

    async def upsert_product(
        self, snapshot: ProductSnapshot, uow: UnitOfWork | None = None
    ) -> bool:
        """Store the catalogue snapshot unless a newer one is stored."""
        values = {
            **snapshot_values(snapshot),
            "features": domain.text_features(snapshot.name, snapshot.description),
        }
        async with writing(self.db, uow) as work:
            applied = (await work.execute(_UPSERT_PRODUCT(work.dialect), values)).rowcount > 0
        return bool(applied)

    async def product(self, product_id: str) -> tuple[ProductSnapshot, dict[str, float]] | None:
        async with self.db.reading() as conn:
            row = (
                await conn.execute(sa.select(catalogue).where(catalogue.c.product_id == product_id))
            ).first()
        return None if row is None else (snapshot_from_row(row), dict(row.features))

    async def available(self, product_ids: Iterable[str]) -> dict[str, ProductSnapshot]:
        """The given products that may be recommended: active and in stock."""
        ids = list(set(product_ids))
        if not ids:
            return {}
        async with self.db.reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(catalogue).where(catalogue.c.product_id.in_(ids), *_AVAILABLE)
                )
            ).all()
        return {row.product_id: snapshot_from_row(row) for row in rows}

    async def co_purchases(self, product_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """For each item, the items bought with it and in how many orders."""
        if not product_ids:
            return {}
        query = (
            sa.select(co_purchases)
            .where(co_purchases.c.product_id.in_(list(product_ids)))
            .order_by(co_purchases.c.orders.desc())
            .limit(MAX_NEIGHBOURS * len(product_ids))
        )
        result: dict[str, dict[str, int]] = {}
        async with self.db.reading() as conn:
            for row in await conn.execute(query):
                result.setdefault(row.product_id, {})[row.other_id] = int(row.orders)
        return result

    async def order_counts(self, product_ids: Iterable[str]) -> dict[str, int]:
        ids = list(set(product_ids))
        if not ids:
            return {}
        async with self.db.reading() as conn:
            rows = await conn.execute(
                sa.select(item_stats.c.product_id, item_stats.c.orders).where(
                    item_stats.c.product_id.in_(ids)
                )
            )
            return {row.product_id: int(row.orders) for row in rows}

    async def history(self, user_id: str) -> tuple[dict[str, int], dict[str, int]]:
        """(quantity purchased, views) per product for ``user_id``."""
        async with self.db.reading() as conn:
            rows = (
                await conn.execute(sa.select(user_items).where(user_items.c.user_id == user_id))
            ).all()
        purchases = {r.product_id: int(r.purchased) for r in rows if r.purchased > 0}
        views = {r.product_id: int(r.views) for r in rows if r.views > 0}
        return purchases, views

    async def popular(self, limit: int, now: datetime | None = None) -> list[domain.Scored]:
        """Available products by recency-weighted paid quantity (read at ``now``)."""
        scale = 1.0 / domain.decay_factor(now or utcnow())
        query = (
            sa.select(item_stats.c.product_id, item_stats.c.popularity)
            .join(catalogue, catalogue.c.product_id == item_stats.c.product_id)
            .where(item_stats.c.orders > 0, *_AVAILABLE)
            .order_by(item_stats.c.popularity.desc(), item_stats.c.product_id)
            .limit(limit)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [domain.Scored(r.product_id, r.popularity * scale, domain.POPULAR) for r in rows]

    async def newest_available(self, limit: int) -> list[domain.Scored]:
        """Cold start: the newest products on sale, scored below anything sold."""
        query = (
            sa.select(catalogue.c.product_id)
            .where(*_AVAILABLE)
            .order_by(catalogue.c.created_at.desc(), catalogue.c.product_id)
            .limit(limit)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).all()
        return [
            domain.Scored(r.product_id, domain.FALLBACK_SCORE / (1 + i), domain.POPULAR)
            for i, r in enumerate(rows)
        ]

    async def similarity_candidates(self) -> dict[str, dict[str, float]]:
        """Text features of available products (newest first, bounded)."""
        query = (
            sa.select(catalogue.c.product_id, catalogue.c.features)
            .where(*_AVAILABLE)
            .order_by(catalogue.c.created_at.desc())
            .limit(MAX_SIMILAR_CANDIDATES)
        )
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).all()
        return {r.product_id: dict(r.features) for r in rows}

    async def features(self, product_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        ids = list(set(product_ids))
        if not ids:
            return {}
        async with self.db.reading() as conn:
            rows = await conn.execute(
                sa.select(catalogue.c.product_id, catalogue.c.features).where(
                    catalogue.c.product_id.in_(ids)
                )
            )
            return {r.product_id: dict(r.features) for r in rows}
