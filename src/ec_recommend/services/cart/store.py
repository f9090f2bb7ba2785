"""The cart table: one row per (user, product) with its quantity."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import Aborted, FailedPrecondition
from ec_recommend.platform.storage import Database, Migration, UnitOfWork
from ec_recommend.platform.storage.database import create_tables
from ec_recommend.services.cart import domain

metadata = sa.MetaData()

cart_items = sa.Table(
    "cart_items",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("product_id", sa.String(36), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
)

MIGRATIONS = [Migration(1, create_tables(metadata))]

Line = tuple[str, int]  # product_id, quantity


class CartStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def lines(self, user_id: str) -> list[Line]:
        async with self.db.reading() as conn:
            rows = await conn.execute(
                sa.select(cart_items.c.product_id, cart_items.c.quantity)
                .where(cart_items.c.user_id == user_id)
                .order_by(cart_items.c.added_at, cart_items.c.product_id)
            )
            return [(row.product_id, row.quantity) for row in rows]

    async def change(
        self,
        user_id: str,
        product_id: str,
        *,
        add: int = 0,
        set_to: int | None = None,
        check: domain.QuantityCheck,
    ) -> None:
        """Add to (or set) one line's quantity; ``check`` vets the result.

        Two first adds of one product race on the primary key; the loser
        retries and then sees the winner's row.
        """
        for _ in range(3):
            try:
                async with self.db.unit_of_work() as uow:
                    await self._change(uow, user_id, product_id, add, set_to, check)
                    await uow.commit()
                return
            except IntegrityError:
                continue
        raise Aborted("the cart changed concurrently; retry", product_id=product_id)

    async def _change(
        self,
        uow: UnitOfWork,
        user_id: str,
        product_id: str,
        add: int,
        set_to: int | None,
        check: domain.QuantityCheck,
    ) -> None:
        key = (cart_items.c.user_id == user_id, cart_items.c.product_id == product_id)
        current = (
            await uow.execute(sa.select(cart_items.c.quantity).where(*key))
        ).scalar_one_or_none()
        quantity = set_to if set_to is not None else (current or 0) + add
        if quantity == 0:
            await uow.execute(sa.delete(cart_items).where(*key))
            return
        if quantity > domain.MAX_QUANTITY:
            raise FailedPrecondition(
                f"at most {domain.MAX_QUANTITY} of one product per cart",
                product_id=product_id,
                reason="quantity_limit",
            )
        check(quantity)
        if current is not None:
            await uow.execute(sa.update(cart_items).where(*key).values(quantity=quantity))
            return
        count = (
            await uow.execute(
                sa.select(sa.func.count())
                .select_from(cart_items)
                .where(cart_items.c.user_id == user_id)
            )
        ).scalar_one()
        if count >= domain.MAX_LINES:
            raise FailedPrecondition(
                f"a cart holds at most {domain.MAX_LINES} products", reason="cart_full"
            )
        await uow.execute(
            sa.insert(cart_items).values(
                user_id=user_id, product_id=product_id, quantity=quantity, added_at=utcnow()
            )
        )

    async def remove(self, user_id: str, product_id: str) -> None:
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.delete(cart_items).where(
                    cart_items.c.user_id == user_id, cart_items.c.product_id == product_id
                )
            )
            await uow.commit()

    async def clear(self, user_id: str) -> None:
        async with self.db.unit_of_work() as uow:
            await uow.execute(sa.delete(cart_items).where(cart_items.c.user_id == user_id))
            await uow.commit()
