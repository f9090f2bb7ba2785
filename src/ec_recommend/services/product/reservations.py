"""Stock reservations: all lines or none, state changes by compare-and-set.

Stock changes are single conditional UPDATEs (``... WHERE available >= n``),
so concurrent reservations can never oversell on either engine; a multi-line
reservation runs in one unit of work and leaves nothing behind if any line is
short. A reservation's state changes first, by a conditional UPDATE, then its
units move: of two racing moves exactly one moves them. Reservations are
leases (``expires_at``): ``leases`` confirms them and expires them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.errors import FailedPrecondition, NotFound
from ec_recommend.platform.storage import Database, UnitOfWork
from ec_recommend.services.product import domain, events
from ec_recommend.services.product.tables import (
    COMMITTED,
    EXPIRED,
    RELEASED,
    RESERVED,
    RESTOCKED,
    load_product,
    products,
    reservations,
    status_after,
)

DEFAULT_LEASE = 300.0


@dataclass(frozen=True)
class Reservation:
    product_ids: list[str]
    state: str
    expires_at: datetime | None  # only while reserved


def stock_move(target: str, product_id: str, quantity: int, now: datetime) -> sa.Update:
    """The UPDATE that moves a reservation line's units to ``target``."""
    if target == RELEASED:
        available = products.c.available + quantity
        values = {
            "available": available,
            "reserved": products.c.reserved - quantity,
            "status": status_after(available),
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
            "status": status_after(available),
        }
    return sa.update(products).where(products.c.id == product_id).values(**values, updated_at=now)


class StockReservations:
    def __init__(self, db: Database, *, reservation_lease: float = DEFAULT_LEASE) -> None:
        self.db = db
        self.reservation_lease = timedelta(seconds=reservation_lease)

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
                        status=status_after(remaining),
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
                product = await load_product(uow, product_id)
                if product.available == 0:
                    await events.product_out_of_stock(uow, product)
            await uow.commit()
        return RESERVED

    async def _explain_short_line(self, uow: UnitOfWork, product_id: str, quantity: int) -> None:
        product = await load_product(uow, product_id)
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
                    status=status_after(remaining),
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
            product = await load_product(uow, row.product_id)
            if product.available == 0:
                await events.product_out_of_stock(uow, product)

    async def reservation(self, reservation_id: str) -> Reservation:
        query = sa.select(
            reservations.c.product_id, reservations.c.state, reservations.c.expires_at
        ).where(reservations.c.reservation_id == reservation_id)
        # A bounded read by key: on the loop's thread on SQLite (``Database.read``).
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        if not rows:
            raise NotFound(f"reservation {reservation_id} not found", reservation_id=reservation_id)
        state = str(rows[0].state)
        expires = rows[0].expires_at
        return Reservation(
            [row.product_id for row in rows],
            state,
            aware(expires) if expires is not None and state == RESERVED else None,
        )

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
