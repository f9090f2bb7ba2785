"""The product service's tables, its reservation states, and product rows as
domain objects."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ec_recommend.platform.clock import aware
from ec_recommend.platform.errors import NotFound
from ec_recommend.platform.events.outbox import outbox_migration
from ec_recommend.platform.money import Money
from ec_recommend.platform.storage import Migration, UnitOfWork
from ec_recommend.platform.storage.database import add_columns, create_tables
from ec_recommend.services.product import domain

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

RESERVED, RELEASED, COMMITTED, RESTOCKED = "reserved", "released", "committed", "restocked"
EXPIRED = "expired"  # released by its lease running out, not by its order


def status_after(available: Any) -> Any:
    """SQL for the status a product has once ``available`` units remain."""
    return sa.case(
        (products.c.status == domain.ARCHIVED, domain.ARCHIVED),
        (available > 0, domain.ACTIVE),
        else_=domain.OUT_OF_STOCK,
    )


def to_product(row: Any) -> domain.Product:
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


_BY_ID = sa.select(products).where(products.c.id == sa.bindparam("product_id"))


async def load_product(uow: UnitOfWork, product_id: str) -> domain.Product:
    row = (await uow.execute(_BY_ID, {"product_id": product_id})).first()
    if row is None:
        raise NotFound(f"product {product_id} not found", product_id=product_id)
    return to_product(row)
