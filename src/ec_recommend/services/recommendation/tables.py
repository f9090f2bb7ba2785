"""The recommendation service's own tables (one SQLite file or PostgreSQL schema)."""

from __future__ import annotations

import sqlalchemy as sa

from ec_recommend.platform.storage import Migration
from ec_recommend.platform.storage.database import create_tables

metadata = sa.MetaData()

# An order's row, once seen: paid (with its lines in rec_order_lines) or, for an
# order cancelled first, without lines and user (``counts._record``).
paid_orders = sa.Table(
    "rec_paid_orders",
    metadata,
    sa.Column("order_id", sa.String(100), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
)

item_stats = sa.Table(
    "rec_item_stats",
    metadata,
    sa.Column("product_id", sa.String(36), primary_key=True),
    sa.Column("orders", sa.Integer, nullable=False),  # n(a): paid orders holding it
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("popularity", sa.Float, nullable=False, index=True),  # forward-decayed quantity
)

co_purchases = sa.Table(
    "rec_co_purchases",
    metadata,
    sa.Column("product_id", sa.String(36), primary_key=True),
    sa.Column("other_id", sa.String(36), primary_key=True),
    sa.Column("orders", sa.Integer, nullable=False),  # co(a, b), stored both ways
)

user_items = sa.Table(
    "rec_user_items",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("product_id", sa.String(36), primary_key=True),
    sa.Column("purchased", sa.Integer, nullable=False),
    sa.Column("views", sa.Integer, nullable=False),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
)

catalogue = sa.Table(
    "rec_products",
    metadata,
    sa.Column("product_id", sa.String(36), primary_key=True),
    sa.Column("seller_id", sa.String(64), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("base_price", sa.BigInteger, nullable=False),
    sa.Column("sale_price", sa.BigInteger, nullable=True),
    sa.Column("stock", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("images", sa.JSON, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Version 2: the lines of each counted order and cancellation markers, so a
# refunded order can be taken back out of the counts.
metadata_v2 = sa.MetaData()

order_lines = sa.Table(
    "rec_order_lines",
    metadata_v2,
    sa.Column("order_id", sa.String(100), primary_key=True),
    sa.Column("product_id", sa.String(36), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
)

cancelled_orders = sa.Table(
    "rec_cancelled_orders",
    metadata_v2,
    sa.Column("order_id", sa.String(100), primary_key=True),
)

MIGRATIONS = [Migration(1, create_tables(metadata)), Migration(2, create_tables(metadata_v2))]
