"""Stock reservations: all lines or none, state changes by compare-and-set.

Stock changes are single conditional UPDATEs (``... WHERE available >= n``),
so concurrent reservations can never oversell on either engine; a multi-line
reservation runs in one unit of work and leaves nothing behind if any line is
short. A reservation's state changes first, by a conditional UPDATE, then its
units move: of two racing moves exactly one moves them. Reservations are
leases (``expires_at``): ``leases`` confirms them and expires them.

Every write gives back what its caller needs (``RETURNING``): the state's
compare-and-set the lines it moved, each stock UPDATE its product as the move
left it. So a move reads nothing back, neither to decide on its events nor
to answer with the stock levels (``Outcome``). Nor does a new reservation
read first whether its id is taken: its first stock UPDATE moves units only
while the id is new, and only a reservation that moved nothing looks its
id up (a replay, or a line short of stock). On PostgreSQL a one-line
reservation that leaves units on sale, and a commit, are one statement each
(data-modifying CTEs); everything else, and everything on SQLite, is a unit
of work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

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
    to_product,
)

DEFAULT_LEASE = 300.0


@dataclass(frozen=True)
class Reservation:
    product_ids: list[str]
    state: str
    expires_at: datetime | None  # only while reserved


@dataclass(frozen=True)
class Outcome:
    """A reservation's state after a call, and what the call's own move left."""

    state: str
    # Each reserved product as the move left it, by id; None when the call
    # moved nothing (a replay, a reservation its lease already gave back).
    products: list[domain.Product] | None = None
    expires_at: datetime | None = None  # of a reservation this call made


# Statements built once and run with parameters (``platform.storage.statements``);
# an UPDATE's parameters are named apart from the columns it sets.
_QUANTITY = sa.bindparam("b_quantity", type_=sa.Integer)
_NOW = sa.bindparam("b_now", type_=sa.DateTime(timezone=True))
_PRODUCT = products.c.id == sa.bindparam("b_product_id")


def _stock_update(**values: Any) -> sa.Update:
    """A stock UPDATE giving back the product as it left it."""
    return (
        sa.update(products).where(_PRODUCT).values(**values, updated_at=_NOW).returning(*products.c)
    )


_RELEASE_UNITS = _stock_update(
    available=products.c.available + _QUANTITY,
    reserved=products.c.reserved - _QUANTITY,
    status=status_after(products.c.available + _QUANTITY),
)
_COMMIT_UNITS = _stock_update(
    reserved=products.c.reserved - _QUANTITY,
    sold=products.c.sold + _QUANTITY,
)
_RESTOCK_UNITS = _stock_update(
    available=products.c.available + _QUANTITY,
    sold=products.c.sold - _QUANTITY,
    status=status_after(products.c.available + _QUANTITY),
)
_STOCK_MOVES = {RELEASED: _RELEASE_UNITS, COMMITTED: _COMMIT_UNITS, RESTOCKED: _RESTOCK_UNITS}
_RESERVE_UNITS = _stock_update(
    available=products.c.available - _QUANTITY,
    reserved=products.c.reserved + _QUANTITY,
    status=status_after(products.c.available - _QUANTITY),
).where(products.c.available >= _QUANTITY, products.c.status != domain.ARCHIVED)
# The first line's: only while the reservation id is new, so a new reservation
# needs no read of its own before it (a repeated id takes nothing and is then
# looked up).
_RESERVE_FIRST_UNITS = _RESERVE_UNITS.where(
    ~sa.exists().where(reservations.c.reservation_id == sa.bindparam("b_reservation_id"))
)
# On PostgreSQL a reservation of one line that leaves units on sale is one
# statement: the stock UPDATE (only while the id is new) and the line's
# INSERT, one round trip where the transaction took four. Selling the last
# unit records product.out_of_stock with the move, so it, a line short of
# stock, an archived product and a repeated id (the UPDATE moves nothing
# then) take the transaction's way, which decides and explains.
_MOVED_ONE = _RESERVE_FIRST_UNITS.where(products.c.available > _QUANTITY).cte(
    "moved"  # _stock_update's RETURNING: the product as the move left it
)
_RESERVE_ONE_AT_ONCE = sa.select(_MOVED_ONE).add_cte(
    sa.insert(reservations)
    .from_select(
        ["reservation_id", "product_id", "quantity", "state", "updated_at", "expires_at"],
        sa.select(
            sa.bindparam("b_reservation_id", type_=reservations.c.reservation_id.type),
            _MOVED_ONE.c.id,
            _QUANTITY,
            sa.literal(RESERVED, reservations.c.state.type),
            _NOW,
            sa.bindparam("b_expires_at", type_=reservations.c.expires_at.type),
        ),
    )
    .cte("added")
)
_RETAKE_UNITS = _stock_update(
    available=products.c.available - _QUANTITY,
    sold=products.c.sold + _QUANTITY,
    status=status_after(products.c.available - _QUANTITY),
).where(products.c.available >= _QUANTITY)
_ADD_LINE = sa.insert(reservations)
_STATE = (
    sa.select(reservations.c.state)
    .where(reservations.c.reservation_id == sa.bindparam("reservation_id"))
    .limit(1)
)
_STATE_AND_LEASE = sa.select(
    reservations.c.product_id, reservations.c.state, reservations.c.expires_at
).where(reservations.c.reservation_id == sa.bindparam("reservation_id"))
_CHANGE_STATE = (
    sa.update(reservations)
    .where(
        reservations.c.reservation_id == sa.bindparam("b_reservation_id"),
        reservations.c.state == sa.bindparam("b_current"),
    )
    .values(state=sa.bindparam("b_target"), updated_at=_NOW)
    .returning(reservations.c.product_id, reservations.c.quantity)  # the lines it moves
)


# A commit moves units from reserved to sold and records no event, so on
# PostgreSQL it is one statement (data-modifying CTEs): the state's
# compare-and-set and its lines' stock UPDATEs, each line's product as the
# move left it. One round trip where the transaction took four, with the
# products' row locks held for that statement alone. A row per line; none
# when the reservation was not reserved (the transaction's way then
# decides). SQLite has no data-modifying CTEs: it takes the transaction.
_CHANGED = _CHANGE_STATE.cte("changed")
_MOVED = (
    sa.update(products)
    .where(products.c.id == _CHANGED.c.product_id)
    .values(
        reserved=products.c.reserved - _CHANGED.c.quantity,
        sold=products.c.sold + _CHANGED.c.quantity,
        updated_at=_NOW,
    )
    .returning(*products.c)
    .cte("moved")
)
_COMMIT_AT_ONCE = (
    sa.select(_CHANGED.c.product_id.label("line_product_id"), *_MOVED.c)
    .select_from(_CHANGED.outerjoin(_MOVED, _MOVED.c.id == _CHANGED.c.product_id))
    .order_by(_CHANGED.c.product_id)
)


_Bound = tuple[sa.Update, dict[str, Any]]
Line = tuple[str, int]  # a reservation line: product id, quantity


def stock_move(target: str, product_id: str, quantity: int, now: datetime) -> _Bound:
    """The UPDATE (and its parameters) that moves a reservation line's units to
    ``target``; it returns the product as the move left it."""
    return _STOCK_MOVES[target], _units(product_id, quantity, now)


def lines_of(changed: Iterable[Any]) -> list[Line]:
    """The lines a reservation's state change returned (product id, quantity),
    in product id order: a stable lock order for their stock UPDATEs."""
    return sorted((row.product_id, row.quantity) for row in changed)


def _units(product_id: str, quantity: int, now: datetime) -> dict[str, Any]:
    return {"b_product_id": product_id, "b_quantity": quantity, "b_now": now}


class StockReservations:
    def __init__(self, db: Database, *, reservation_lease: float = DEFAULT_LEASE) -> None:
        self.db = db
        self.reservation_lease = timedelta(seconds=reservation_lease)

    async def reserve(self, reservation_id: str, lines: Sequence[Line]) -> Outcome:
        """Reserve every line or none; repeating a reservation id is a no-op."""
        try:
            return await self._reserve(reservation_id, lines)
        except IntegrityError:
            # A concurrent request with the same reservation id won the race.
            async with self.db.unit_of_work() as uow:
                state = await self._reservation_state(uow, reservation_id)
            if state is None:
                raise
            return Outcome(state)

    async def _reserve(self, reservation_id: str, lines: Sequence[Line]) -> Outcome:
        now = utcnow()
        expires_at = now + self.reservation_lease
        if len(lines) == 1 and self.db.dialect == "postgresql":
            ((product_id, quantity),) = lines
            params = {
                **_units(product_id, quantity, now),
                "b_reservation_id": reservation_id,
                "b_expires_at": expires_at,
            }
            row = await self.db.write(_RESERVE_ONE_AT_ONCE, params, lambda result: result.first())
            if row is not None:
                return Outcome(RESERVED, [to_product(row)], expires_at)
        async with self.db.unit_of_work() as uow:
            moved: list[domain.Product] = []
            added: list[dict[str, Any]] = []
            # A stable lock order keeps two multi-line reservations from deadlocking.
            for index, (product_id, quantity) in enumerate(sorted(lines)):
                units = _units(product_id, quantity, now)
                statement = _RESERVE_UNITS
                if index == 0:
                    statement = _RESERVE_FIRST_UNITS
                    units["b_reservation_id"] = reservation_id
                row = (await uow.execute(statement, units)).first()
                if row is None:
                    # The first line took nothing: short, or a replay of an id
                    # reserved before (this unit of work rolls back, unchanged).
                    if index == 0 and (state := await self._reservation_state(uow, reservation_id)):
                        return Outcome(state)
                    await self._explain_short_line(uow, product_id, quantity)
                moved.append(to_product(row))
                added.append(
                    {
                        "reservation_id": reservation_id,
                        "product_id": product_id,
                        "quantity": quantity,
                        "state": RESERVED,
                        "updated_at": now,
                        "expires_at": expires_at,
                    }
                )
            await uow.execute(_ADD_LINE, added)  # one statement for every line
            # Availability only drops here, so a product at zero just sold out.
            for product in moved:
                if product.available == 0:
                    await events.product_out_of_stock(uow, product)
            await uow.commit()
        return Outcome(RESERVED, moved, expires_at)

    async def _explain_short_line(
        self, uow: UnitOfWork, product_id: str, quantity: int
    ) -> NoReturn:
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

    async def transition(self, reservation_id: str, target: str) -> Outcome:
        """Move a reservation to released, committed or restocked; idempotent.

        The state changes first, by a conditional UPDATE: of two racing moves
        (a retried release, a commit against a lease expiring) exactly one
        wins and moves the units; the other sees the new state.
        """
        allowed_from = {RELEASED: RESERVED, COMMITTED: RESERVED, RESTOCKED: COMMITTED}[target]
        if target == COMMITTED and self.db.dialect == "postgresql":
            committed = await self._commit_at_once(reservation_id)
            if committed is not None:
                return committed
        async with self.db.unit_of_work() as uow:
            now = utcnow()
            lines = await _change_state(uow, reservation_id, allowed_from, target, now)
            if lines:
                moved = await move_units(uow, lines, target, now)
                await uow.commit()
                return Outcome(target, moved)
            state = await self._reservation_state(uow, reservation_id)
            if state is None:
                raise NotFound(
                    f"reservation {reservation_id} not found", reservation_id=reservation_id
                )
            if state == target:
                return Outcome(state)
            if state == EXPIRED and target == RELEASED:
                return Outcome(RELEASED)  # its lease already gave the units back
            if state == EXPIRED and target == COMMITTED:
                # Paid after its lease ran out: take the units again, if they are still there.
                lines = await _change_state(uow, reservation_id, EXPIRED, COMMITTED, now)
                if not lines:
                    return Outcome(COMMITTED)
                moved = await self._retake(uow, reservation_id, lines, now)
                await uow.commit()
                return Outcome(COMMITTED, moved)
            raise FailedPrecondition(
                f"reservation {reservation_id} is {state}, cannot become {target}",
                reservation_id=reservation_id,
                state=state,
            )

    async def _commit_at_once(self, reservation_id: str) -> Outcome | None:
        """A reserved reservation committed in one statement (PostgreSQL);
        None when it was not reserved."""
        params = {
            "b_reservation_id": reservation_id,
            "b_current": RESERVED,
            "b_target": COMMITTED,
            "b_now": utcnow(),
        }
        rows = await self.db.write(_COMMIT_AT_ONCE, params, lambda result: result.all())
        if not rows:
            return None
        return Outcome(COMMITTED, [to_product(row) for row in rows if row.id is not None])

    async def _retake(
        self, uow: UnitOfWork, reservation_id: str, lines: Sequence[Line], now: datetime
    ) -> list[domain.Product]:
        moved: list[domain.Product] = []
        for product_id, quantity in lines:
            row = (await uow.execute(_RETAKE_UNITS, _units(product_id, quantity, now))).first()
            if row is None:  # the unit of work rolls back: nothing moves
                raise FailedPrecondition(
                    f"reservation {reservation_id} ran out and product {product_id} "
                    "no longer has its units",
                    reservation_id=reservation_id,
                    product_id=product_id,
                    reason="reservation_expired",
                )
            moved.append(to_product(row))
        for product in moved:
            if product.available == 0:
                await events.product_out_of_stock(uow, product)
        return moved

    async def reservation(self, reservation_id: str) -> Reservation:
        key = {"reservation_id": reservation_id}
        # A bounded read by key: on the loop's thread on SQLite (``Database.rows``).
        rows = await self.db.rows(_STATE_AND_LEASE, key)
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
        row = (await uow.execute(_STATE, {"reservation_id": reservation_id})).first()
        return None if row is None else str(row.state)


async def move_units(
    uow: UnitOfWork, lines: Sequence[Line], target: str, now: datetime
) -> list[domain.Product]:
    """Move the units of a reservation's ``lines`` (its state already changed,
    ``lines_of`` that change) to ``target``; returns their products as the
    move left them."""
    moved: list[domain.Product] = []
    for product_id, quantity in lines:
        row = (await uow.execute(*stock_move(target, product_id, quantity, now))).first()
        if row is not None:
            moved.append(to_product(row))
    if target in (RELEASED, RESTOCKED):  # units are buyable again
        for product in moved:
            await events.product_updated(uow, product, ["available"])
    return moved


async def _change_state(
    uow: UnitOfWork, reservation_id: str, current: str, target: str, now: datetime
) -> list[Line]:
    """Compare-and-set of a reservation's state; the lines it changed, none
    when it was not ``current``."""
    changed = await uow.execute(
        _CHANGE_STATE,
        {
            "b_reservation_id": reservation_id,
            "b_current": current,
            "b_target": target,
            "b_now": now,
        },
    )
    return lines_of(changed)
