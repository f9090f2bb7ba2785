"""Product tables and the queries on them.

Stock changes are single conditional UPDATEs (``... WHERE available >= n``),
so concurrent reservations can never oversell on either engine; a multi-line
reservation runs in one unit of work and leaves nothing behind if any line is
short.
Reservations are leases (``expires_at``): see ``leases`` for how they are
confirmed and how expired ones give their units back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.errors import AlreadyExists, FailedPrecondition, NotFound
from ec_recommend.platform.events.outbox import outbox_migration
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.money import Money
from ec_recommend.platform.paging import Page
from ec_recommend.platform.storage import Database, Migration, UnitOfWork
from ec_recommend.platform.storage.database import add_columns, create_tables
from ec_recommend.services.product import domain, events

metadata = sa.MetaData()

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("seller_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(domain.MAX_NAME), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("base_price", sa.BigInteger, nullable=False),
    sa.Column("sale_price", sa.BigInteger, nullable=True),
    sa.Column("available", sa.Integer, nullable=False),
    sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sold", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("images", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("available >= 0", name="available_not_negative"),
    sa.CheckConstraint("reserved >= 0", name="reserved_not_negative"),
)

reservations = sa.Table(
    "stock_reservations",
    metadata,
    sa.Column("reservation_id", sa.String(100), primary_key=True),
    sa.Column("product_id", sa.String(36), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # When a reserved reservation's lease runs out (NULL: reserved before
    # leases existed, held until its order moves it).
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("reservations_by_expiry", "state", "expires_at"),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("product_id", sa.String(36), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("rating", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("product_id", "user_id", name="one_review_per_user"),
    sa.Index("reviews_by_product", "product_id", "created_at"),
)

MIGRATIONS = [
    Migration(1, create_tables(metadata)),
    outbox_migration(2),
    Migration(3, add_columns(reservations, "expires_at")),
]
DEFAULT_LEASE = 300.0

RESERVED, RELEASED, COMMITTED, RESTOCKED = "reserved", "released", "committed", "restocked"
EXPIRED = "expired"  # released by its lease running out, not by its order

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


def _status_after(available: Any) -> Any:
    """SQL for the status a product has once ``available`` units remain."""
    return sa.case(
        (products.c.status == domain.ARCHIVED, domain.ARCHIVED),
        (available > 0, domain.ACTIVE),
        else_=domain.OUT_OF_STOCK,
    )


def _to_product(row: Any) -> domain.Product:
    sale = None if row.sale_price is None else Money(row.sale_price, row.currency)
    return domain.Product(
        id=row.id,
        seller_id=row.seller_id,
        name=row.name,
        description=row.description,
        base_price=Money(row.base_price, row.currency),
        sale_price=sale,
        available=row.available,
        reserved=row.reserved,
        status=row.status,
        images=tuple(domain.Image(i["url"], i.get("alt_text", "")) for i in row.images),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


@dataclass(frozen=True)
class Reservation:
    product_ids: list[str]
    state: str
    expires_at: datetime | None  # only while reserved


async def load_product(uow: UnitOfWork, product_id: str) -> domain.Product:
    row = (await uow.execute(sa.select(products).where(products.c.id == product_id))).first()
    if row is None:
        raise NotFound(f"product {product_id} not found", product_id=product_id)
    return _to_product(row)


def stock_move(target: str, product_id: str, quantity: int, now: datetime) -> sa.Update:
    """The UPDATE that moves a reservation line's units to ``target``."""
    if target == RELEASED:
        available = products.c.available + quantity
        values = {
            "available": available,
            "reserved": products.c.reserved - quantity,
            "status": _status_after(available),
        }
    elif target == COMMITTED:
        values = {
            "reserved": products.c.reserved - quantity,
            "sold": products.c.sold + quantity,
        }
    else:
        available = products.c.available + quantity
        values = {
            "available": available,
            "sold": products.c.sold - quantity,
            "status": _status_after(available),
        }
    return sa.update(products).where(products.c.id == product_id).values(**values, updated_at=now)


def _images(images: Sequence[domain.Image]) -> list[dict[str, str]]:
    return [{"url": i.url, "alt_text": i.alt_text} for i in images]


class ProductStore:
    def __init__(self, db: Database, *, reservation_lease: float = DEFAULT_LEASE) -> None:
        self.db = db
        self.reservation_lease = timedelta(seconds=reservation_lease)

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
        def read(conn: sa.Connection) -> Any:
            return conn.execute(_BY_ID, {"product_id": product_id}).first()

        row = await self.db.read(read)  # by primary key: bounded
        if row is None:
            raise NotFound(f"product {product_id} not found", product_id=product_id)
        return _to_product(row)

    async def get_many(self, product_ids: Sequence[str]) -> list[domain.Product]:
        if not product_ids:
            return []

        def read(conn: sa.Connection) -> Sequence[Any]:
            return conn.execute(_BY_IDS, {"product_ids": list(set(product_ids))}).all()

        rows = await self.db.read(read)  # by primary key, at most MAX_BATCH ids: bounded
        by_id = {row.id: _to_product(row) for row in rows}
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
        return [_to_product(row) for row in rows], int(total)

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
                available=new_available, status=_status_after(new_available), updated_at=utcnow()
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

    async def reserve(self, reservation_id: str, lines: Sequence[tuple[str, int]]) -> str:
        """Reserve every line or none; repeating a reservation id is a no-op."""
        try:
            return await self._reserve(reservation_id, lines)
        except IntegrityError:
            # A concurrent request with the same reservation id won the race.
            async with self.db.unit_of_work() as uow:
                state = await self._reservation_state(uow, reservation_id)
            if state is None:
                raise
            return state

    async def _reserve(self, reservation_id: str, lines: Sequence[tuple[str, int]]) -> str:
        async with self.db.unit_of_work() as uow:
            existing = await self._reservation_state(uow, reservation_id)
            if existing is not None:
                return existing
            now = utcnow()
            # A stable lock order keeps two multi-line reservations from deadlocking.
            for product_id, quantity in sorted(lines):
                remaining = products.c.available - quantity
                result = await uow.execute(
                    sa.update(products)
                    .where(
                        products.c.id == product_id,
                        products.c.available >= quantity,
                        products.c.status != domain.ARCHIVED,
                    )
                    .values(
                        available=remaining,
                        reserved=products.c.reserved + quantity,
                        status=_status_after(remaining),
                        updated_at=now,
                    )
                )
                if result.rowcount == 0:
                    await self._explain_short_line(uow, product_id, quantity)
                await uow.execute(
                    sa.insert(reservations).values(
                        reservation_id=reservation_id,
                        product_id=product_id,
                        quantity=quantity,
                        state=RESERVED,
                        updated_at=now,
                        expires_at=now + self.reservation_lease,
                    )
                )
            # Availability only drops here, so a product at zero just sold out.
            for product_id, _ in sorted(lines):
                product = await self._get(uow, product_id)
                if product.available == 0:
                    await events.product_out_of_stock(uow, product)
            await uow.commit()
        return RESERVED

    async def _explain_short_line(self, uow: UnitOfWork, product_id: str, quantity: int) -> None:
        product = await self._get(uow, product_id)
        if product.status == domain.ARCHIVED:
            raise FailedPrecondition(
                f"product {product_id} is no longer sold",
                product_id=product_id,
                reason="product_archived",
            )
        raise FailedPrecondition(
            f"only {product.available} of product {product_id} available, {quantity} requested",
            product_id=product_id,
            reason="insufficient_stock",
            available=str(product.available),
            requested=str(quantity),
        )

    async def transition(self, reservation_id: str, target: str) -> str:
        """Move a reservation to released, committed or restocked; idempotent.

        The state changes first, by a conditional UPDATE: of two racing moves
        (a retried release, a commit against a lease expiring) exactly one
        wins and moves the units; the other sees the new state.
        """
        allowed_from = {RELEASED: RESERVED, COMMITTED: RESERVED, RESTOCKED: COMMITTED}[target]
        async with self.db.unit_of_work() as uow:
            now = utcnow()
            if await _change_state(uow, reservation_id, allowed_from, target, now):
                await move_units(uow, reservation_id, target, now)
                await uow.commit()
                return target
            state = await self._reservation_state(uow, reservation_id)
            if state is None:
                raise NotFound(
                    f"reservation {reservation_id} not found", reservation_id=reservation_id
                )
            if state == target:
                return state
            if state == EXPIRED and target == RELEASED:
                return RELEASED  # its lease already gave the units back
            if state == EXPIRED and target == COMMITTED:
                # Paid after its lease ran out: take the units again, if they are still there.
                if await _change_state(uow, reservation_id, EXPIRED, COMMITTED, now):
                    await self._retake(uow, reservation_id, now)
                    await uow.commit()
                return COMMITTED
            raise FailedPrecondition(
                f"reservation {reservation_id} is {state}, cannot become {target}",
                reservation_id=reservation_id,
                state=state,
            )

    async def _retake(self, uow: UnitOfWork, reservation_id: str, now: datetime) -> None:
        rows = (
            await uow.execute(
                sa.select(reservations.c.product_id, reservations.c.quantity)
                .where(reservations.c.reservation_id == reservation_id)
                .order_by(reservations.c.product_id)
            )
        ).all()
        for row in rows:
            remaining = products.c.available - row.quantity
            taken = await uow.execute(
                sa.update(products)
                .where(products.c.id == row.product_id, products.c.available >= row.quantity)
                .values(
                    available=remaining,
                    sold=products.c.sold + row.quantity,
                    status=_status_after(remaining),
                    updated_at=now,
                )
            )
            if taken.rowcount == 0:  # the unit of work rolls back: nothing moves
                raise FailedPrecondition(
                    f"reservation {reservation_id} ran out and product {row.product_id} "
                    "no longer has its units",
                    reservation_id=reservation_id,
                    product_id=row.product_id,
                    reason="reservation_expired",
                )
        for row in rows:
            product = await self._get(uow, row.product_id)
            if product.available == 0:
                await events.product_out_of_stock(uow, product)

    async def reservation(self, reservation_id: str) -> Reservation:
        async with self.db.reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        reservations.c.product_id, reservations.c.state, reservations.c.expires_at
                    ).where(reservations.c.reservation_id == reservation_id)
                )
            ).all()
        if not rows:
            raise NotFound(f"reservation {reservation_id} not found", reservation_id=reservation_id)
        state = str(rows[0].state)
        expires = rows[0].expires_at
        return Reservation(
            [row.product_id for row in rows],
            state,
            aware(expires) if expires is not None and state == RESERVED else None,
        )

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

    @staticmethod
    async def _reservation_state(uow: UnitOfWork, reservation_id: str) -> str | None:
        row = (
            await uow.execute(
                sa.select(reservations.c.state)
                .where(reservations.c.reservation_id == reservation_id)
                .limit(1)
            )
        ).first()
        return None if row is None else str(row.state)


async def move_units(uow: UnitOfWork, reservation_id: str, target: str, now: datetime) -> None:
    """Move every line's units to ``target`` (its state already changed)."""
    rows = (
        await uow.execute(
            sa.select(reservations.c.product_id, reservations.c.quantity)
            .where(reservations.c.reservation_id == reservation_id)
            .order_by(reservations.c.product_id)  # a stable lock order
        )
    ).all()
    for row in rows:
        await uow.execute(stock_move(target, row.product_id, row.quantity, now))
    if target in (RELEASED, RESTOCKED):  # units are buyable again
        for row in rows:
            product = await load_product(uow, row.product_id)
            await events.product_updated(uow, product, ["available"])


async def _change_state(
    uow: UnitOfWork, reservation_id: str, current: str, target: str, now: datetime
) -> bool:
    """Compare-and-set of a reservation's state; False when it was not ``current``."""
    changed = await uow.execute(
        sa.update(reservations)
        .where(reservations.c.reservation_id == reservation_id, reservations.c.state == current)
        .values(state=target, updated_at=now)
    )
    return bool(changed.rowcount)
