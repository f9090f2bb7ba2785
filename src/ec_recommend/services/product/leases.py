"""Reservation leases: a reservation holds its units only while its lease runs.

ReserveStock gives every reservation a short lease (``reservation_lease``).
The order it belongs to confirms it (``confirm``), extending the lease to the
order's payment deadline; whatever nobody confirms, or whose order never
settles it, ``expire_due`` gives back. Both are conditional UPDATEs on the
reservation's state and expiry, so with several product replicas sweeping
one PostgreSQL database an expired reservation returns its units exactly
once, and a confirmation racing the sweep either wins (the lease is extended)
or sees the units gone. An expired reservation's state is ``expired``: its
order's late release is then a no-op, and a late commit (an order paid after
its lease ran out) takes the units again if they are still there.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.errors import FailedPrecondition, NotFound, Unavailable
from ec_recommend.platform.storage import Database
from ec_recommend.services.product.reservations import lines_of, move_units
from ec_recommend.services.product.tables import EXPIRED, RELEASED, RESERVED, reservations

log = logging.getLogger(__name__)

SWEEP_BATCH = 100

# Built once, run with parameters (see ``platform.storage.statements``).
_UNTIL = sa.bindparam("b_until", type_=sa.DateTime(timezone=True))
_EXTEND = (
    sa.update(reservations)
    .where(
        reservations.c.reservation_id == sa.bindparam("b_reservation_id"),
        reservations.c.state == RESERVED,
        sa.or_(reservations.c.expires_at.is_(None), reservations.c.expires_at < _UNTIL),
    )
    .values(expires_at=_UNTIL, updated_at=sa.bindparam("b_now", type_=sa.DateTime(timezone=True)))
)
_LEASE = (
    sa.select(reservations.c.state, reservations.c.expires_at)
    .where(reservations.c.reservation_id == sa.bindparam("reservation_id"))
    .limit(1)
)


@dataclass(frozen=True)
class Lease:
    state: str
    expires_at: datetime | None  # while reserved


class Leases:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def confirm(self, reservation_id: str, hold_until: datetime) -> Lease:
        """Hold a reservation's units until ``hold_until`` (never shorter); idempotent."""
        extended = await self.db.write(
            _EXTEND,
            {"b_reservation_id": reservation_id, "b_until": hold_until, "b_now": utcnow()},
            lambda result: result.rowcount,
        )
        if extended:
            return Lease(RESERVED, hold_until)
        # Not extended: say why, from the reservation as it now is.
        row = await self.db.first(_LEASE, {"reservation_id": reservation_id})
        if row is None:
            raise NotFound(f"reservation {reservation_id} not found", reservation_id=reservation_id)
        state = str(row.state)
        if state in (EXPIRED, RELEASED):
            raise FailedPrecondition(
                f"reservation {reservation_id} is {state}; its units are back in stock",
                reservation_id=reservation_id,
                reason="reservation_expired" if state == EXPIRED else "reservation_released",
            )
        # Already held long enough, or committed: nothing to extend.
        held = state == RESERVED and row.expires_at is not None
        return Lease(state, aware(row.expires_at) if held else None)

    async def expire_due(self, now: datetime | None = None) -> list[str]:
        """Release every reservation whose lease ran out; returns their ids."""
        now = now or utcnow()
        expired: list[str] = []
        while True:
            due = await self._due(now)
            for reservation_id in due:
                if await self._expire(reservation_id, now):
                    expired.append(reservation_id)
            if len(due) < SWEEP_BATCH:
                return expired

    async def _due(self, now: datetime) -> list[str]:
        async with self.db.reading() as conn:
            rows = await conn.execute(
                sa.select(reservations.c.reservation_id)
                .where(reservations.c.state == RESERVED, reservations.c.expires_at <= now)
                .group_by(reservations.c.reservation_id)
                .order_by(sa.func.min(reservations.c.expires_at))
                .limit(SWEEP_BATCH)
            )
            return [row.reservation_id for row in rows]

    async def _expire(self, reservation_id: str, now: datetime) -> bool:
        async with self.db.unit_of_work() as uow:
            # The condition is re-checked under the row lock: a replica that
            # got here first, or a confirmation that just extended the lease,
            # leaves nothing to update.
            taken = lines_of(
                await uow.execute(
                    sa.update(reservations)
                    .where(
                        reservations.c.reservation_id == reservation_id,
                        reservations.c.state == RESERVED,
                        reservations.c.expires_at <= now,
                    )
                    .values(state=EXPIRED, updated_at=utcnow())
                    .returning(reservations.c.product_id, reservations.c.quantity)
                )
            )
            if not taken:
                return False
            await move_units(uow, taken, RELEASED, now)
            await uow.commit()
        return True


async def sweep_forever(leases: Leases, interval: float) -> None:
    """Give back expired reservations every ``interval`` seconds."""
    while True:
        await asyncio.sleep(interval)
        try:
            expired = await leases.expire_due()
        except Unavailable as exc:  # the database refusing a connection now: no bug
            log.warning("reservation lease sweep skipped (%s); retrying next interval", exc)
            continue
        except Exception:
            log.exception("reservation lease sweep failed; retrying next interval")
            continue
        if expired:
            log.warning(
                "returned the units of %d reservation(s) whose lease ran out: %s",
                len(expired),
                ", ".join(expired[:10]),
            )
