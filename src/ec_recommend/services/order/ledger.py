"""Payments and refunds of orders, and idempotency-key claims of CreateOrder."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.errors import AlreadyExists
from ec_recommend.platform.events.outbox import event_row_binds, outbox
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.money import Money
from ec_recommend.platform.storage import Database, UnitOfWork
from ec_recommend.platform.storage.statements import prefixed
from ec_recommend.services.order import domain
from ec_recommend.services.order.tables import (
    DECLINED,
    FAILED,
    PROCESSING,
    SUCCEEDED,
    idempotency_keys,
    orders,
    payment_keys,
    payments,
    refunds,
)


@dataclass(frozen=True)
class Payment:
    id: str
    order_id: str
    status: str
    amount: Money
    provider_payment_id: str
    decline_reason: str
    started_at: datetime | None = None


@dataclass(frozen=True)
class Claim:
    """Who holds an idempotency key: the order it creates and the body it had."""

    fingerprint: str
    order_id: str
    created_at: datetime | None = None


def _payment(row: Any) -> Payment:
    return Payment(
        id=row.id,
        order_id=row.order_id,
        status=row.status,
        amount=Money(row.amount, row.currency),
        provider_payment_id=row.provider_payment_id or "",
        decline_reason=row.decline_reason or "",
        started_at=aware(row.created_at),
    )


class AttemptEnded(Exception):
    """The payment attempt was already ended (by a concurrent resolver)."""


@dataclass(frozen=True)
class AttemptStart:
    """What starting a charge found: ``started`` (ours, PROCESSING), else the
    order's ``live`` charge (in flight or succeeded), else the ``status`` of
    an order that can no longer be paid. All empty: a racing start won."""

    started: Payment | None = None
    live: Payment | None = None
    status: str = ""


# Built once, run with parameters (see ``platform.storage.statements``).
_ADD_CLAIM = sa.insert(idempotency_keys)
_ADD_PAYMENT_KEY = sa.insert(payment_keys)
_ADD_PAYMENT = sa.insert(payments)
# An order's status and its live charge (columns of None when it has none)
# in one read, so from one snapshot: PAID and its charge's SUCCEEDED commit
# together, so no start can see one without the other.
_STATUS_AND_LIVE_PAYMENT = (
    sa.select(orders.c.status.label("order_status"), *payments.c)
    .select_from(
        orders.outerjoin(
            payments,
            sa.and_(
                payments.c.order_id == orders.c.id,
                payments.c.status.in_((PROCESSING, SUCCEEDED)),
            ),
        )
    )
    .where(orders.c.id == sa.bindparam("order_id"))
)
# A charge's start as one statement: inserted only while the order is unpaid and
# has no live charge, both read from the statement's one snapshot (as the read
# above); ``one_live_payment_per_order`` still turns away a racing start.
_LIVE = payments.alias("live")
_START_ATTEMPT = (
    sa.insert(payments)
    .from_select(
        ["id", "order_id", "status", "amount", "currency", "created_at", "updated_at"],
        sa.select(
            sa.bindparam("b_id", type_=sa.String),
            sa.bindparam("b_order_id", type_=sa.String),
            sa.literal(PROCESSING, type_=sa.String),
            sa.bindparam("b_amount", type_=sa.BigInteger),
            sa.bindparam("b_currency", type_=sa.String),
            sa.bindparam("b_now", type_=sa.DateTime(timezone=True)),
            sa.bindparam("b_now", type_=sa.DateTime(timezone=True)),
        ).where(
            sa.exists().where(
                orders.c.id == sa.bindparam("b_order_id"),
                orders.c.status == domain.PENDING_PAYMENT,
            ),
            ~sa.exists().where(
                _LIVE.c.order_id == sa.bindparam("b_order_id"),
                _LIVE.c.status.in_((PROCESSING, SUCCEEDED)),
            ),
        ),
    )
    .returning(payments.c.id)
)
_CLAIM = sa.select(idempotency_keys).where(
    idempotency_keys.c.user_id == sa.bindparam("user_id"),
    idempotency_keys.c.key == sa.bindparam("key"),
)
_PAYMENT_KEY_FINGERPRINT = sa.select(payment_keys.c.fingerprint).where(
    payment_keys.c.order_id == sa.bindparam("order_id"),
    payment_keys.c.key == sa.bindparam("key"),
)
_PAYMENT = sa.select(payments).where(payments.c.id == sa.bindparam("payment_id"))
_LIVE_PAYMENT = sa.select(payments).where(
    payments.c.order_id == sa.bindparam("order_id"),
    payments.c.status.in_((PROCESSING, SUCCEEDED)),
)
_END_ATTEMPT = sa.update(payments).where(
    payments.c.id == sa.bindparam("b_payment_id"), payments.c.status == PROCESSING
)

# On PostgreSQL a charged attempt's ending as PAID is one statement: the
# order's row and the attempt's, each locked if it is still what the change
# needs (FOR UPDATE reads the latest version of a row another transaction
# changed, so a cancellation or a resolver that committed first is seen),
# then both compare-and-sets, each only when both rows were found, and the
# order.paid event with them: both land or neither, as in the transaction
# (BEGIN, two UPDATEs, the event, COMMIT) it replaces. The answer says which
# row was not as needed, and the order's stock state after the change.
_B_ORDER = sa.bindparam("b_order_id", type_=orders.c.id.type)
_B_PAYMENT = sa.bindparam("b_payment_id", type_=payments.c.id.type)
_B_NOW = sa.bindparam("b_now", type_=orders.c.updated_at.type)
_UNPAID = (
    sa.select(orders.c.id)
    .where(orders.c.id == _B_ORDER, orders.c.status == domain.PENDING_PAYMENT)
    .with_for_update()
    .cte("unpaid")
)
_CHARGING = (
    sa.select(payments.c.id)
    .where(payments.c.id == _B_PAYMENT, payments.c.status == PROCESSING)
    .with_for_update()
    .cte("charging")
)
_BOTH_AS_NEEDED = sa.and_(sa.exists(_UNPAID.select()), sa.exists(_CHARGING.select()))
_PAID = (
    sa.update(orders)
    .where(orders.c.id == _B_ORDER, orders.c.status == domain.PENDING_PAYMENT, _BOTH_AS_NEEDED)
    .values(status=domain.PAID, payment_id=_B_PAYMENT, updated_at=_B_NOW)
    .returning(orders.c.stock_state)
    .cte("paid")
)
_EVENT = event_row_binds("e_")
_PAY_AT_ONCE = sa.select(
    sa.exists(_UNPAID.select()).label("unpaid"),
    sa.exists(_CHARGING.select()).label("charging"),
    sa.select(_PAID.c.stock_state).scalar_subquery().label("stock_state"),
).add_cte(
    sa.update(payments)
    .where(payments.c.id == _B_PAYMENT, payments.c.status == PROCESSING, _BOTH_AS_NEEDED)
    .values(
        status=SUCCEEDED,
        provider_payment_id=sa.bindparam("b_provider_payment_id", type_=sa.String),
        updated_at=_B_NOW,
    )
    .cte("succeeded"),
    sa.insert(outbox)
    .from_select(list(_EVENT), sa.select(*_EVENT.values()).where(sa.exists(_PAID.select())))
    .cte("paid_event"),
)


class Ledger:
    def __init__(self, db: Database) -> None:
        self.db = db
        # PostgreSQL runs a charge's PAID ending as one statement (``pay_at_once``).
        self.pays_at_once = db.dialect == "postgresql"

    # -- idempotency claims ------------------------------------------------

    async def claim(self, user_id: str, key: str, fingerprint: str, order_id: str) -> Claim | None:
        """Take ``key`` for ``order_id``; returns the existing claim when it is taken."""
        claim = {
            "user_id": user_id,
            "key": key,
            "fingerprint": fingerprint,
            "order_id": order_id,
            "created_at": utcnow(),
        }
        try:
            await self.db.write(_ADD_CLAIM, claim)
            return None
        except IntegrityError:
            existing = await self.find_claim(user_id, key)
            # Vanished between our insert and read: the holder gave up; the caller retries.
            return existing or Claim(fingerprint="", order_id="")

    async def find_claim(self, user_id: str, key: str) -> Claim | None:
        row = await self.db.first(_CLAIM, {"user_id": user_id, "key": key})
        if row is None:
            return None
        return Claim(row.fingerprint, row.order_id, aware(row.created_at))

    async def drop_claim(self, user_id: str, key: str, order_id: str) -> None:
        """Free a key whose order was never created, so a retry can try again."""
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.delete(idempotency_keys).where(
                    idempotency_keys.c.user_id == user_id,
                    idempotency_keys.c.key == key,
                    idempotency_keys.c.order_id == order_id,
                )
            )
            await uow.commit()

    # -- payments ----------------------------------------------------------

    async def use_payment_key(self, order_id: str, key: str, fingerprint: str) -> None:
        """Bind ``key`` to this payment body; another body with it is a conflict."""
        binding = {
            "order_id": order_id,
            "key": key,
            "fingerprint": fingerprint,
            "created_at": utcnow(),
        }
        try:
            await self.db.write(_ADD_PAYMENT_KEY, binding)
            return
        except IntegrityError:
            pass
        bound = await self.db.fetch(
            _PAYMENT_KEY_FINGERPRINT,
            {"order_id": order_id, "key": key},
            lambda result: result.scalar_one_or_none(),
        )
        if bound is not None and bound != fingerprint:
            raise AlreadyExists(
                "this idempotency key was used for a different payment request",
                reason="idempotency_key_reused",
            )

    async def start_payment(self, order_id: str, amount: Money) -> Payment | None:
        """Record a charge in flight; None when another is in flight or succeeded."""
        try:
            async with self.db.unit_of_work() as uow:
                payment = await self._insert_attempt(uow, order_id, amount)
                await uow.commit()
        except IntegrityError:
            return None
        return payment

    async def begin_attempt(self, order_id: str, amount: Money) -> AttemptStart:
        """Start a charge of an unpaid order that has none live, with the checks:
        the order's status and its live charge.

        One statement starts it (on PostgreSQL one round trip, where a
        transaction reading first took four); only a start it turned away reads
        why, so the common path reads nothing.
        """
        now = utcnow()
        payment_id = new_id()
        attempt = {
            "b_id": payment_id,
            "b_order_id": order_id,
            "b_amount": amount.amount,
            "b_currency": amount.currency,
            "b_now": now,
        }
        try:
            started = await self.db.write(_START_ATTEMPT, attempt, lambda result: result.first())
        except IntegrityError:
            return AttemptStart()  # another process started one first
        if started is not None:
            payment = Payment(payment_id, order_id, PROCESSING, amount, "", "", now)
            return AttemptStart(started=payment)
        found = await self.db.fetch(
            _STATUS_AND_LIVE_PAYMENT, {"order_id": order_id}, lambda result: result.one()
        )
        if found.id is not None:
            return AttemptStart(live=_payment(found))
        if found.order_status != domain.PENDING_PAYMENT:
            return AttemptStart(status=found.order_status)
        return AttemptStart()  # its live charge ended in between: look again

    @staticmethod
    async def _insert_attempt(uow: UnitOfWork, order_id: str, amount: Money) -> Payment:
        now = utcnow()
        payment_id = new_id()
        attempt = {
            "id": payment_id,
            "order_id": order_id,
            "status": PROCESSING,
            "amount": amount.amount,
            "currency": amount.currency,
            "created_at": now,
            "updated_at": now,
        }
        await uow.execute(_ADD_PAYMENT, attempt)
        return Payment(payment_id, order_id, PROCESSING, amount, "", "", now)

    async def live_payment(self, order_id: str) -> Payment | None:
        """The order's charge in flight or succeeded, if any."""
        row = await self.db.first(_LIVE_PAYMENT, {"order_id": order_id})
        return None if row is None else _payment(row)

    async def payment(self, payment_id: str) -> Payment:
        key = {"payment_id": payment_id}
        return _payment(await self.db.fetch(_PAYMENT, key, lambda result: result.one()))

    async def stale_attempts(self, started_before: datetime, limit: int = 100) -> list[Payment]:
        """Attempts still PROCESSING that started before ``started_before``."""
        query = (
            sa.select(payments)
            .where(payments.c.status == PROCESSING, payments.c.created_at < started_before)
            .order_by(payments.c.created_at)
            .limit(limit)
        )
        async with self.db.reading() as conn:
            return [_payment(row) for row in await conn.execute(query)]

    # Every end of an attempt is a compare-and-set from PROCESSING: of two
    # racing resolvers (a retried call and the sweep) exactly one ends it.

    async def succeed(self, uow: UnitOfWork, payment_id: str, provider_payment_id: str) -> None:
        """Mark SUCCEEDED inside ``uow``; AttemptEnded (rolling it back) if it had ended."""
        await self._end(uow, payment_id, status=SUCCEEDED, provider_payment_id=provider_payment_id)

    async def pay_at_once(
        self,
        order: domain.Order,
        payment_id: str,
        provider_payment_id: str,
        paid_event: Callable[[domain.Order], Mapping[str, Any]],
    ) -> domain.Order | None:
        """``order`` PAID and its attempt SUCCEEDED with ``paid_event``'s row,
        in one statement (PostgreSQL, ``_PAY_AT_ONCE``): the order as paid;
        None when it was no longer unpaid, AttemptEnded when the attempt had
        ended (nothing changed then). ``order`` may be stale but for what
        never changes (its number, buyer, lines, total, creation)."""
        now = utcnow()
        paid = dataclasses.replace(order, status=domain.PAID, payment_id=payment_id, updated_at=now)
        params = {
            "b_order_id": order.id,
            "b_payment_id": payment_id,
            "b_provider_payment_id": provider_payment_id,
            "b_now": now,
            **prefixed("e_", paid_event(paid)),
        }
        row = await self.db.write(_PAY_AT_ONCE, params, lambda result: result.one())
        if not row.unpaid:
            return None
        if not row.charging:
            raise AttemptEnded(payment_id)
        return dataclasses.replace(paid, stock_state=row.stock_state)

    async def fail(self, payment_id: str, *, declined: bool, reason: str) -> bool:
        """Mark DECLINED or FAILED; False when the attempt had already ended."""
        try:
            async with self.db.unit_of_work() as uow:
                await self._end(
                    uow,
                    payment_id,
                    status=DECLINED if declined else FAILED,
                    decline_reason=reason[:64],
                )
                await uow.commit()
        except AttemptEnded:
            return False
        return True

    async def refund_charge(self, payment: Payment, provider_payment_id: str) -> str | None:
        """End a charged attempt whose order was cancelled meanwhile: FAILED
        (``order_cancelled``) and its refund recorded, together. None when
        the attempt had already ended."""
        charged = dataclasses.replace(payment, provider_payment_id=provider_payment_id)
        try:
            async with self.db.unit_of_work() as uow:
                await self._end(
                    uow,
                    payment.id,
                    status=FAILED,
                    decline_reason="order_cancelled",
                    provider_payment_id=provider_payment_id,
                )
                refund_id = await self.record_refund(uow, payment.order_id, charged)
                await uow.commit()
        except AttemptEnded:
            return None
        return refund_id

    async def succeeded_payment(self, uow: UnitOfWork, order_id: str) -> Payment | None:
        row = (
            await uow.execute(
                sa.select(payments).where(
                    payments.c.order_id == order_id, payments.c.status == SUCCEEDED
                )
            )
        ).first()
        return None if row is None else _payment(row)

    @staticmethod
    async def _end(uow: UnitOfWork, payment_id: str, **values: Any) -> None:
        # SET takes the columns of ``values`` (the statement's cached per set).
        ended = {"b_payment_id": payment_id, "updated_at": utcnow(), **values}
        result = await uow.execute(_END_ATTEMPT, ended)
        if result.rowcount == 0:
            raise AttemptEnded(payment_id)

    # -- refunds -----------------------------------------------------------

    async def record_refund(self, uow: UnitOfWork, order_id: str, payment: Payment) -> str:
        refund_id = new_id()
        await uow.execute(
            sa.insert(refunds).values(
                id=refund_id,
                order_id=order_id,
                payment_id=payment.id,
                amount=payment.amount.amount,
                currency=payment.amount.currency,
                created_at=utcnow(),
            )
        )
        return refund_id

    async def refund_done(self, refund_id: str, provider_refund_id: str) -> None:
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(refunds)
                .where(refunds.c.id == refund_id)
                .values(provider_refund_id=provider_refund_id)
            )
            await uow.commit()

    async def pending_refunds(self, limit: int = 100) -> list[tuple[str, Payment]]:
        """Refunds recorded but not yet confirmed by the provider (a failed call)."""
        query = (
            sa.select(refunds.c.id.label("refund_id"), payments)
            .join(payments, payments.c.id == refunds.c.payment_id)
            .where(refunds.c.provider_refund_id.is_(None))
            .limit(limit)
        )
        async with self.db.reading() as conn:
            return [(row.refund_id, _payment(row)) for row in await conn.execute(query)]

    async def refund_of(self, order_id: str) -> dict[str, Any] | None:
        async with self.db.reading() as conn:
            row = (
                await conn.execute(sa.select(refunds).where(refunds.c.order_id == order_id))
            ).first()
        return None if row is None else dict(row._mapping)
