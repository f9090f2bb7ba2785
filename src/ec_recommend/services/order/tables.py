"""The order service's own tables (one SQLite file or PostgreSQL schema).

Uniqueness that idempotency depends on is enforced here: one claim per
(user, idempotency key), one live payment per order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex

from ec_recommend.platform.events.outbox import outbox_migration
from ec_recommend.platform.storage import Migration
from ec_recommend.platform.storage.database import create_tables
from ec_recommend.services.order import domain

metadata = sa.MetaData()

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("order_number", sa.String(32), nullable=False, unique=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total_amount", sa.BigInteger, nullable=False),
    sa.Column("stock_state", sa.String(16), nullable=False),
    sa.Column("payment_id", sa.String(36), nullable=True),
    sa.Column("cancel_reason", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# The payment timeout's schedule: the earliest unpaid order, found without a scan.
unpaid_by_age = sa.Index("orders_status_created_at", orders.c.status, orders.c.created_at)
# Backfills (recommendation) page through the orders of a status changed since their last pass.
changed_by_status = sa.Index("orders_status_updated_at", orders.c.status, orders.c.updated_at)

order_items = sa.Table(
    "order_items",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.String(36), nullable=False),
    sa.Column("seller_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.BigInteger, nullable=False),
)

# The sequence behind order numbers: an autoincrement key works on both engines.
order_numbers = sa.Table(
    "order_numbers",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(36), nullable=False, unique=True),
)

idempotency_keys = sa.Table(
    "order_idempotency_keys",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(domain.MAX_IDEMPOTENCY_KEY), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("order_id", sa.String(36), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

PROCESSING, SUCCEEDED, DECLINED, FAILED = "PROCESSING", "SUCCEEDED", "DECLINED", "FAILED"
_LIVE = (PROCESSING, SUCCEEDED)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("order_id", sa.String(36), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("provider_payment_id", sa.String(64), nullable=True),
    sa.Column("decline_reason", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
# At most one charge in flight or succeeded per order: a second payment waits or replays.
sa.Index(
    "one_live_payment_per_order",
    payments.c.order_id,
    unique=True,
    sqlite_where=payments.c.status.in_(_LIVE),
    postgresql_where=payments.c.status.in_(_LIVE),
)

# Idempotency keys of ProcessPayment calls: one body per (order, key).
payment_keys = sa.Table(
    "payment_idempotency_keys",
    metadata,
    sa.Column("order_id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(domain.MAX_IDEMPOTENCY_KEY), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("order_id", sa.String(36), nullable=False, unique=True),
    sa.Column("payment_id", sa.String(36), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("provider_refund_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def _add_index(index: sa.Index) -> Callable[[AsyncConnection], Awaitable[None]]:
    async def add(conn: AsyncConnection) -> None:
        # A fresh database has it from create_tables; IF NOT EXISTS rather than
        # checkfirst, whose look-up ignores the schema a PostgreSQL service maps to.
        await conn.execute(CreateIndex(index, if_not_exists=True))

    return add


MIGRATIONS = [
    Migration(1, create_tables(metadata)),
    outbox_migration(2),
    Migration(3, create_tables(metadata)),  # adds payment_idempotency_keys
    Migration(4, _add_index(unpaid_by_age)),
    Migration(5, _add_index(changed_by_status)),
]
