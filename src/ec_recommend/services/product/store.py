"""The product service's store: products and reviews, and (from
``StockReservations``) stock reservations.

Stock changes are single conditional UPDATEs (``... WHERE available >= n``),
so a change can never take stock below zero on either engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import AlreadyExists, FailedPrecondition, NotFound
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.money import Money
from ec_recommend.platform.paging import Page
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.services.product import domain, events
from ec_recommend.services.product.reservations import (
    DEFAULT_LEASE,
    Outcome,
    Reservation,
    StockReservations,
    move_units,
    stock_move,
)
from ec_recommend.services.product.tables import (
    COMMITTED,
    EXPIRED,
    MIGRATIONS,
    RELEASED,
    RESERVED,
    RESTOCKED,
    load_product,
    metadata,
    products,
    reservations,
    reviews,
    status_after,
    to_product,
)

# Names other modules import from here.
__all__ = [
    "COMMITTED",
    "DEFAULT_LEASE",
    "EXPIRED",
    "MIGRATIONS",
    "RELEASED",
    "RESERVED",
    "RESTOCKED",
    "SORT_COLUMNS",
    "Outcome",
    "ProductStore",
    "Reservation",
    "metadata",
    "move_units",
    "products",
    "reservations",
    "reviews",
    "stock_move",
]

_effective_price = sa.func.coalesce(products.c.sale_price, products.c.base_price)
SORT_COLUMNS: dict[str, Any] = {
    "created_at": products.c.created_at,
    "updated_at": products.c.updated_at,
    "name": products.c.name,
    "price": _effective_price,
    "stock_quantity": products.c.available,
}


# Built once: constructing a statement per read costs more than the read.
_BY_ID = sa.select(products).where(products.c.id == sa.bindparam("product_id"))
_BY_IDS = sa.select(products).where(products.c.id.in_(sa.bindparam("product_ids", expanding=True)))


def _images(images: Sequence[domain.Image]) -> list[dict[str, str]]:
    return [{"url": i.url, "alt_text": i.alt_text} for i in images]


class ProductStore(StockReservations):
    async def create(
        self,
        *,
        seller_id: str,
        name: str,
        description: str,
        base_price: Money,
        sale_price: Money | None,
        stock: int,
        images: Sequence[domain.Image],
    ) -> domain.Product:
        now = utcnow()
        product_id = new_id()
        values = {
            "id": product_id,
            "seller_id": seller_id,
            "name": name,
            "description": description,
            "currency": base_price.currency,
            "base_price": base_price.amount,
            "sale_price": None if sale_price is None else sale_price.amount,
            "available": stock,
            "reserved": 0,
            "sold": 0,
            "status": domain.status_for_stock(domain.ACTIVE, stock),
            "images": _images(images),
            "created_at": now,
            "updated_at": now,
        }
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.insert(products).values(**values))
            product = await self._get(uow, product_id)
            await events.product_created(uow, product)
            await uow.commit()
        return product

    async def get(self, product_id: str) -> domain.Product:
        row = await self.db.first(_BY_ID, {"product_id": product_id})  # by primary key: bounded
        if row is None:
            raise NotFound(f"product {product_id} not found", product_id=product_id)
        return to_product(row)

    async def get_many(self, product_ids: Sequence[str]) -> list[domain.Product]:
        if not product_ids:
            return []
        key = {"product_ids": list(set(product_ids))}
        rows = await self.db.rows(_BY_IDS, key)  # by primary key, at most MAX_BATCH ids: bounded
        by_id = {row.id: to_product(row) for row in rows}
        return [by_id[pid] for pid in dict.fromkeys(product_ids) if pid in by_id]

    async def list_page(
        self, page: Page, *, seller_id: str = "", statuses: Sequence[str] = ()
    ) -> tuple[list[domain.Product], int]:
        conditions = []
        if seller_id:
            conditions.append(products.c.seller_id == seller_id)
        if statuses:
            conditions.append(products.c.status.in_(statuses))
        column = SORT_COLUMNS[page.sort_by]
        order = column.desc() if page.descending else column.asc()
        query = (
            sa.select(products)
            .where(*conditions)
            .order_by(order, products.c.id)
            .limit(page.size)
            .offset(page.offset)
        )
        count = sa.select(sa.func.count()).select_from(products).where(*conditions)
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).all()
            total = (await conn.execute(count)).scalar_one()
        return [to_product(row) for row in rows], int(total)

    async def update(self, product_id: str, changes: dict[str, Any]) -> domain.Product:
        """Apply already-validated column changes; status follows stock."""
        async with self.db.unit_of_work() as uow:
            current = await self._get(uow, product_id)
            values = dict(changes)
            if "status" in values:
                values["status"] = domain.status_for_stock(values["status"], current.available)
            values["updated_at"] = utcnow()
            await uow.execute(
                sa.update(products).where(products.c.id == product_id).values(**values)
            )
            product = await self._get(uow, product_id)
            await events.product_updated(uow, product, sorted(changes))
            await uow.commit()
        return product

    async def adjust_available(
        self, product_id: str, *, delta: int | None = None, absolute: int | None = None
    ) -> domain.Product:
        """Add ``delta`` to (or set ``absolute`` as) the available stock."""
        new_available = products.c.available + delta if delta is not None else sa.literal(absolute)
        statement = (
            sa.update(products)
            .where(products.c.id == product_id)
            .values(
                available=new_available, status=status_after(new_available), updated_at=utcnow()
            )
        )
        if delta is not None and delta < 0:
            statement = statement.where(products.c.available >= -delta)
        async with self.db.unit_of_work() as uow:
            before = await self._get(uow, product_id)
            result = await uow.execute(statement)
            if result.rowcount == 0:
                await self._get(uow, product_id)  # NOT_FOUND if it does not exist
                raise FailedPrecondition(
                    "stock cannot go below zero", product_id=product_id, reason="insufficient_stock"
                )
            product = await self._get(uow, product_id)
            await events.product_updated(uow, product, ["available"])
            if product.available == 0 and before.available > 0:
                await events.product_out_of_stock(uow, product)
            await uow.commit()
        return product

    async def create_review(
        self, product_id: str, user_id: str, rating: int, comment: str
    ) -> dict[str, Any]:
        values = {
            "id": new_id(),
            "product_id": product_id,
            "user_id": user_id,
            "rating": rating,
            "comment": comment,
            "created_at": utcnow(),
        }
        try:
            async with self.db.unit_of_work() as uow:
                await self._get(uow, product_id)
                await uow.execute(sa.insert(reviews).values(**values))
                await events.review_created(
                    uow,
                    review_id=str(values["id"]),
                    product_id=product_id,
                    user_id=user_id,
                    rating=rating,
                )
                await uow.commit()
        except IntegrityError:
            raise AlreadyExists(
                "you have already reviewed this product", product_id=product_id
            ) from None
        return values

    async def list_reviews(self, product_id: str, page: Page) -> tuple[list[Any], int]:
        order = reviews.c.created_at.asc() if not page.descending else reviews.c.created_at.desc()
        if page.sort_by == "rating":
            order = reviews.c.rating.desc() if page.descending else reviews.c.rating.asc()
        async with self.db.reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(reviews)
                    .where(reviews.c.product_id == product_id)
                    .order_by(order, reviews.c.id)
                    .limit(page.size)
                    .offset(page.offset)
                )
            ).all()
            total = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(reviews)
                    .where(reviews.c.product_id == product_id)
                )
            ).scalar_one()
        return list(rows), int(total)

    async def _get(self, uow: UnitOfWork, product_id: str) -> domain.Product:
        return await load_product(uow, product_id)
