"""The sandbox payment provider: a processor's test mode whose records are
durable (its own database, ``payments_sandbox``), so an order service that
crashed mid-charge can still ask what happened to the charge.

Outcomes follow the token (``payments.check_token``); a replayed idempotency
key returns the first outcome (a decline is declined again). A provider
failure (``tok_processingError``) and a malformed request charge nothing and
leave no record.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ec_recommend.config import StorageConfig
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import InvalidArgument, PaymentDeclined, Unavailable
from ec_recommend.platform.money import Money
from ec_recommend.platform.storage import (
    Database,
    Migration,
    PerDialect,
    dialect_insert,
    open_database,
)
from ec_recommend.platform.storage.database import create_tables
from ec_recommend.services.order.payments import (
    NOT_CHARGED,
    ChargeOutcome,
    check_amount,
    check_token,
)

SERVICE = "payments_sandbox"  # its database: <data-dir>/payments_sandbox.db or schema

metadata = sa.MetaData()

charges = sa.Table(
    "sandbox_charges",
    metadata,
    sa.Column("idempotency_key", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # succeeded | declined
    sa.Column("provider_payment_id", sa.String(64), nullable=True, unique=True),
    sa.Column("decline_code", sa.String(64), nullable=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

refunds = sa.Table(
    "sandbox_refunds",
    metadata,
    sa.Column("idempotency_key", sa.String(64), primary_key=True),
    sa.Column("provider_refund_id", sa.String(64), nullable=False, unique=True),
    sa.Column("provider_payment_id", sa.String(64), nullable=False, index=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

MIGRATIONS = [Migration(1, create_tables(metadata))]

# Built once, run with parameters (see ``platform.storage.statements``).
_CHARGE = sa.select(charges).where(charges.c.idempotency_key == sa.bindparam("idempotency_key"))
_ADD_CHARGE = PerDialect(
    lambda dialect: (
        dialect_insert(dialect, charges)
        .on_conflict_do_nothing(index_elements=[charges.c.idempotency_key])
        .returning(*charges.c)
    )
)


@asynccontextmanager
async def open_sandbox(
    storage: StorageConfig, *, latency: float = 0.0
) -> AsyncIterator[SandboxPaymentProvider]:
    # on PostgreSQL, from the order service's process pool, within its budget
    async with open_database(storage, SERVICE, MIGRATIONS) as db:
        yield SandboxPaymentProvider(db, latency)


def _outcome(row: Any) -> ChargeOutcome:
    return ChargeOutcome(row.status, row.provider_payment_id or "", row.decline_code or "")


class SandboxPaymentProvider:
    """Test-mode processor over its own tables."""

    def __init__(self, db: Database, latency: float = 0.0) -> None:
        self.db = db
        self.latency = latency  # seconds before a new charge is decided

    async def charge(self, *, token: str, amount: Money, idempotency_key: str) -> str:
        check_amount(amount)
        if self.latency:
            await asyncio.sleep(self.latency)  # the processor at work: nothing decided yet
        try:
            check_token(token)
            outcome = ChargeOutcome("succeeded", f"ch_{uuid.uuid4().hex[:24]}")
        except PaymentDeclined as exc:
            outcome = ChargeOutcome("declined", decline_code=exc.details["decline_code"])
        except (Unavailable, InvalidArgument):
            # Nothing to record; but a replayed key still answers its first outcome.
            first = await self._charge_row(idempotency_key)
            if first is None:
                raise
            return _answer(first, amount)
        # Decided first, then recorded unless the key has an outcome already
        # (one round trip; a replay or a concurrent call with the key reads it).
        return _answer(await self._record_charge(idempotency_key, amount, outcome), amount)

    async def refund(self, *, provider_payment_id: str, amount: Money, idempotency_key: str) -> str:
        check_amount(amount)
        async with self.db.reading() as conn:
            charged = (
                await conn.execute(
                    sa.select(charges.c.idempotency_key).where(
                        charges.c.provider_payment_id == provider_payment_id
                    )
                )
            ).first()
        if charged is None:
            raise InvalidArgument("unknown charge", field="provider_payment_id")
        refund_id = f"re_{uuid.uuid4().hex[:24]}"
        try:
            async with self.db.unit_of_work() as uow:
                await uow.execute(
                    sa.insert(refunds).values(
                        idempotency_key=idempotency_key,
                        provider_refund_id=refund_id,
                        provider_payment_id=provider_payment_id,
                        amount=amount.amount,
                        currency=amount.currency,
                        created_at=utcnow(),
                    )
                )
                await uow.commit()
            return refund_id
        except IntegrityError:
            async with self.db.reading() as conn:
                return str(
                    (
                        await conn.execute(
                            sa.select(refunds.c.provider_refund_id).where(
                                refunds.c.idempotency_key == idempotency_key
                            )
                        )
                    ).scalar_one()
                )

    async def lookup(self, idempotency_key: str) -> ChargeOutcome:
        row = await self._charge_row(idempotency_key)
        return NOT_CHARGED if row is None else _outcome(row)

    async def _charge_row(self, idempotency_key: str) -> Any:
        return await self.db.first(_CHARGE, {"idempotency_key": idempotency_key})

    async def _record_charge(self, key: str, amount: Money, outcome: ChargeOutcome) -> Any:
        """The key's outcome: this one, inserted, or the one recorded first."""
        charge = {
            "idempotency_key": key,
            "status": outcome.status,
            "provider_payment_id": outcome.provider_payment_id or None,
            "decline_code": outcome.decline_code or None,
            "amount": amount.amount,
            "currency": amount.currency,
            "created_at": utcnow(),
        }
        inserted = await self.db.write(
            _ADD_CHARGE(self.db.dialect), charge, lambda result: result.first()
        )
        return inserted if inserted is not None else await self._charge_row(key)


def _answer(charge: Any, amount: Money) -> str:
    """The charge's id, or the error a processor gives for its recorded outcome."""
    if Money(charge.amount, charge.currency) != amount:
        raise InvalidArgument("idempotency key reused with another amount", field="idempotency_key")
    if charge.status == "declined":
        raise PaymentDeclined("the card was declined", decline_code=charge.decline_code)
    return str(charge.provider_payment_id)
