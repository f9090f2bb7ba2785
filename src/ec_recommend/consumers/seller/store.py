"""The sales ledger: one ``sale`` entry per line of a paid order, one
``reversal`` entry per line when a paid order is cancelled.

Entries are keyed by (order, line, kind), so applying an event twice, or a
cancellation before the payment it reverses, still leaves each entry once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ec_recommend.consumers._sql import insert_once
from ec_recommend.platform.clock import aware
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.paging import Page
from ec_recommend.platform.storage import Database, Migration, UnitOfWork
from ec_recommend.platform.storage.database import create_tables

SALE, REVERSAL = "sale", "reversal"
SORT_COLUMNS = ("occurred_at",)

metadata = sa.MetaData()

ledger = sa.Table(
    "seller_ledger",
    metadata,
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("seller_id", sa.String(64), nullable=False),
    sa.Column("product_id", sa.String(64), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("unit_price", sa.BigInteger, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("seller_ledger_by_seller", "seller_id", "occurred_at"),
)

MIGRATIONS: Sequence[Migration] = (Migration(1, create_tables(metadata)),)


@dataclass(frozen=True)
class LedgerLine:
    line_no: int
    seller_id: str
    product_id: str
    quantity: int
    unit_price: int
    currency: str


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    order_id: str
    seller_id: str
    product_id: str
    kind: str
    quantity: int
    unit_price: int
    amount: int
    currency: str
    occurred_at: datetime


async def record(
    uow: UnitOfWork, order_id: str, kind: str, lines: Sequence[LedgerLine], at: datetime
) -> list[LedgerLine]:
    """Write the entries of ``kind`` for ``lines``; returns the lines new to the ledger."""
    sign = -1 if kind == REVERSAL else 1
    written = []
    for line in lines:
        inserted = await insert_once(
            uow,
            ledger,
            ledger.c.id,
            id=new_id(),
            order_id=order_id,
            line_no=line.line_no,
            kind=kind,
            seller_id=line.seller_id,
            product_id=line.product_id,
            quantity=line.quantity,
            currency=line.currency,
            unit_price=line.unit_price,
            amount=sign * line.unit_price * line.quantity,
            occurred_at=at,
        )
        if inserted:
            written.append(line)
    return written


class LedgerReader:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(self, seller_id: str, page: Page) -> tuple[list[LedgerEntry], int, int]:
        """A page of the seller's entries, the total count and the balance."""
        order = ledger.c.occurred_at.desc() if page.descending else ledger.c.occurred_at
        async with self.db.reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(ledger)
                    .where(ledger.c.seller_id == seller_id)
                    .order_by(order, ledger.c.order_id, ledger.c.line_no, ledger.c.kind)
                    .offset(page.offset)
                    .limit(page.size)
                )
            ).all()
            totals = (
                await conn.execute(
                    sa.select(
                        sa.func.count(), sa.func.coalesce(sa.func.sum(ledger.c.amount), 0)
                    ).where(ledger.c.seller_id == seller_id)
                )
            ).one()
        entries = [
            LedgerEntry(
                id=r.id,
                order_id=r.order_id,
                seller_id=r.seller_id,
                product_id=r.product_id,
                kind=r.kind,
                quantity=r.quantity,
                unit_price=int(r.unit_price),
                amount=int(r.amount),
                currency=r.currency,
                occurred_at=aware(r.occurred_at),
            )
            for r in rows
        ]
        return entries, int(totals[0]), int(totals[1])
