"""Payment attempts always end: a caller that gives up leaves its attempt to
finish, an attempt nobody finished is resolved by asking the provider (on a
retry or by the sweep), and a charge whose order was cancelled meanwhile is
refunded with a record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from grpclib.metadata import Deadline

from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.config import Config
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import Aborted, FailedPrecondition, PaymentDeclined
from ec_recommend.platform.money import Money
from ec_recommend.platform.rpc.context import CallContext, call_scope
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.services.order import domain
from ec_recommend.services.order.attempts import PaymentTiming
from ec_recommend.services.order.checkout import Checkout
from ec_recommend.services.order.fulfilment import Fulfilment
from ec_recommend.services.order.ledger import AttemptStart, Ledger, Payment
from ec_recommend.services.order.sandbox import SandboxPaymentProvider, open_sandbox
from ec_recommend.services.order.store import OrderStore
from ec_recommend.services.order.tables import MIGRATIONS, payments, refunds
from tests.conftest import wait_for
from tests.integration.order.shop import Shop, new_user

pytestmark = pytest.mark.asyncio

TIMING = PaymentTiming(call_timeout=1.0, resolve_after=2.0)


class GatedProvider(SandboxPaymentProvider):
    """Charges wait at a gate (a slow processor); ``hang`` makes them never answer."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        self.hang = False

    async def charge(self, *, token: str, amount: Money, idempotency_key: str) -> str:
        self.entered.set()
        await self.gate.wait()
        if self.hang:
            await asyncio.Event().wait()
        return await super().charge(token=token, amount=amount, idempotency_key=idempotency_key)


@dataclass
class Desk:
    shop: Shop
    db: Database
    store: OrderStore
    ledger: Ledger
    provider: GatedProvider
    fulfilment: Fulfilment
    checkout: Checkout

    async def order(self, product_id: str) -> domain.Order:
        return await self.checkout.create(new_user(), [(product_id, 1)], from_cart=False, key="")

    async def abandoned(self, order: domain.Order, *, charged: str = "") -> Payment:
        """An attempt as a crash leaves it: PROCESSING, started long ago,
        charged at the provider with ``charged`` as token (or not at all)."""
        payment = await self.ledger.start_payment(order.id, order.total)
        assert payment is not None
        if charged:
            with suppress(PaymentDeclined):  # a decline is recorded by the provider too
                await self.provider.charge(
                    token=charged, amount=order.total, idempotency_key=payment.id
                )
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                sa.update(payments)
                .where(payments.c.id == payment.id)
                .values(created_at=utcnow() - timedelta(hours=1))
            )
            await uow.commit()
        return payment


@asynccontextmanager
async def desk(services, config: Config) -> AsyncIterator[Desk]:
    async with (
        services("product") as hosted,
        open_database(config.storage, "order", MIGRATIONS) as db,
        open_sandbox(config.storage) as sandbox,
    ):
        store, ledger = OrderStore(db), Ledger(db)
        provider = GatedProvider(sandbox.db)
        fulfilment = Fulfilment(store, ledger, hosted.clients, provider, TIMING)
        yield Desk(
            Shop(hosted),
            db,
            store,
            ledger,
            provider,
            fulfilment,
            Checkout(store, ledger, hosted.clients),
        )
        await fulfilment.drain(30)


async def test_a_caller_cancelled_mid_charge_leaves_the_attempt_to_finish(services, config) -> None:
    async with desk(services, config) as d:
        product = await d.shop.product(stock=5)
        order = await d.order(product.id)
        d.provider.gate.clear()
        deadline = Deadline.from_timeout(0.2)
        with call_scope(CallContext(deadline=deadline)):  # the caller's budget, as it travels
            caller = asyncio.create_task(d.fulfilment.pay(order, "tok_visa"))
        await d.provider.entered.wait()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await wait_for(lambda: deadline.time_remaining() <= 0)
        d.provider.gate.set()

        async def paid() -> bool:
            return (await d.store.get(order.id)).status == domain.PAID

        await wait_for(paid)
        await d.fulfilment.drain(30)
        # Settled by the attempt itself, not limited by the budget of a caller long gone.
        assert (await d.store.get(order.id)).stock_state == domain.STOCK_COMMITTED
        assert await d.shop.stock(product.id) == (4, 0)


async def test_an_order_cancelled_while_charging_gets_its_refund_recorded(services, config) -> None:
    async with desk(services, config) as d:
        product = await d.shop.product(stock=5)
        order = await d.order(product.id)
        d.provider.gate.clear()
        paying = asyncio.create_task(d.fulfilment.pay(order, "tok_visa"))
        await d.provider.entered.wait()
        await d.fulfilment.change_status(order, domain.CANCELLED, "changed my mind")
        d.provider.gate.set()
        with pytest.raises(FailedPrecondition) as cancelled:
            await paying
        assert cancelled.value.details["reason"] == "order_cancelled"

        assert await d.ledger.pending_refunds() == []  # acknowledged at once
        refund = await d.ledger.refund_of(order.id)
        assert refund is not None and refund["provider_refund_id"].startswith("re_")
        ended = await d.ledger.payment(refund["payment_id"])
        assert (ended.status, ended.decline_reason) == ("FAILED", "order_cancelled")
        assert await d.shop.stock(product.id) == (5, 0)


async def test_a_retry_resolves_an_abandoned_attempt_by_asking_the_provider(
    services, config
) -> None:
    async with desk(services, config) as d:
        product = await d.shop.product(stock=5)
        charged, uncharged = await d.order(product.id), await d.order(product.id)
        was_charged = await d.abandoned(charged, charged="tok_visa")
        never_charged = await d.abandoned(uncharged)

        first = await d.fulfilment.pay(charged, "tok_visa")
        assert (first.id, first.status) == (was_charged.id, "SUCCEEDED")  # no second charge
        second = await d.fulfilment.pay(uncharged, "tok_visa")
        assert second.status == "SUCCEEDED" and second.id != never_charged.id
        ended = await d.ledger.payment(never_charged.id)
        assert (ended.status, ended.decline_reason) == ("FAILED", "not_charged")
        assert await d.shop.stock(product.id) == (3, 0)


async def test_the_sweep_ends_attempts_nobody_retries(services, config) -> None:
    async with desk(services, config) as d:
        product = await d.shop.product(stock=10)
        paid, cancelled, declined, uncharged = [await d.order(product.id) for _ in range(4)]
        await d.abandoned(paid, charged="tok_visa")
        refunded = await d.abandoned(cancelled, charged="tok_mastercard")
        await d.fulfilment.change_status(cancelled, domain.CANCELLED, "changed my mind")
        await d.abandoned(declined, charged="tok_chargeDeclined")
        await d.abandoned(uncharged)

        await d.fulfilment.sweep(payment_timeout=3600)

        assert [(await d.store.get(o.id)).status for o in (paid, declined, uncharged)] == [
            domain.PAID,
            domain.PENDING_PAYMENT,
            domain.PENDING_PAYMENT,
        ]
        refund = await d.ledger.refund_of(cancelled.id)
        assert refund is not None and refund["payment_id"] == refunded.id
        assert refund["provider_refund_id"].startswith("re_")
        async with d.db.reading() as conn:
            stuck = (
                await conn.execute(
                    sa.select(payments.c.id).where(payments.c.status == "PROCESSING")
                )
            ).all()
        assert stuck == []
        # Orders whose attempt was declined or never charged stay payable.
        for order in (declined, uncharged):
            assert (await d.fulfilment.pay(order, "tok_visa")).status == "SUCCEEDED"
        assert await d.shop.stock(product.id) == (7, 0)  # three sold, one released


async def test_a_provider_that_never_answers_leaves_an_attempt_a_retry_resolves(
    services, config
) -> None:
    async with desk(services, config) as d:
        product = await d.shop.product(stock=5)
        order = await d.order(product.id)
        d.provider.hang = True
        with pytest.raises(Aborted) as unknown:
            await d.fulfilment.pay(order, "tok_visa")
        assert unknown.value.details["reason"] == "payment_outcome_unknown"
        live = await d.ledger.live_payment(order.id)
        assert live is not None and live.status == "PROCESSING"

        d.provider.hang = False

        async def paid() -> bool:
            # Until resolve_after has passed, a retry answers "in progress" (ABORTED).
            try:
                return (await d.fulfilment.pay(order, "tok_visa")).status == "SUCCEEDED"
            except Exception:
                return False

        await wait_for(paid, timeout=20, interval=0.2)
        ended = await d.ledger.payment(live.id)
        assert (ended.status, ended.decline_reason) == ("FAILED", "not_charged")


async def test_concurrent_payments_of_one_order_charge_once(services, config) -> None:
    async with desk(services, config) as d:
        product = await d.shop.product(stock=5)
        order = await d.order(product.id)
        results = await asyncio.gather(*(d.fulfilment.pay(order, "tok_visa") for _ in range(8)))
        assert {(p.id, p.provider_payment_id) for p in results} == {
            (results[0].id, results[0].provider_payment_id)
        }


async def test_a_second_payment_answers_in_progress_within_its_own_deadline(
    services, config
) -> None:
    async with desk(services, config) as d:
        product = await d.shop.product(stock=5)
        order = await d.order(product.id)
        d.provider.gate.clear()
        first = asyncio.create_task(d.fulfilment.pay(order, "tok_visa"))
        await d.provider.entered.wait()
        with (
            call_scope(CallContext(deadline=Deadline.from_timeout(0.5))),
            pytest.raises(Aborted) as in_progress,
        ):
            await d.fulfilment.pay(order, "tok_visa")
        assert in_progress.value.details["reason"] == "payment_in_progress"
        d.provider.gate.set()
        paid = await first
        assert await d.fulfilment.pay(order, "tok_visa") == paid  # then the same success


async def test_a_paid_order_whose_stock_is_no_longer_held_is_cancelled_and_refunded(
    services, config
) -> None:
    """Its reservation ran out (the order service was down past the lease) and
    the units were sold to someone else: the buyer must not pay for nothing."""
    async with desk(services, config) as d:
        product = await d.shop.product(stock=1)
        order = await d.order(product.id)
        with call_scope(CallContext()):  # what the lease sweep does, as an internal caller
            await d.shop.products.release_stock(
                pb_product.ReservationRequest(reservation_id=order.id)
            )
        await d.order(product.id)  # someone else takes the unit

        await d.fulfilment.pay(order, "tok_visa")

        settled = await d.store.get(order.id)
        assert settled.status == domain.CANCELLED
        assert settled.stock_state == domain.STOCK_RELEASED
        async with d.db.reading() as conn:
            refunded = (
                await conn.execute(
                    sa.select(refunds.c.order_id).where(refunds.c.order_id == order.id)
                )
            ).all()
        assert refunded, "the charge was kept without a refund record"
        assert await d.shop.stock(product.id) == (0, 1)  # the other buyer's unit, untouched


async def test_a_charge_starts_once_and_otherwise_says_why(services, config) -> None:
    """A start inserts its attempt only for an unpaid order with no live
    charge, and answers a refused start with what refused it."""
    async with desk(services, config) as d:
        product = await d.shop.product(stock=5)
        order = await d.order(product.id)
        starts = await asyncio.gather(
            *(d.ledger.begin_attempt(order.id, order.total) for _ in range(4))
        )
        [started] = [s.started for s in starts if s.started is not None]
        assert started.status == "PROCESSING"
        # The others either saw it live or raced it to the unique index.
        assert all(s.live == started or s == AttemptStart() for s in starts if s.started is None)
        assert await d.ledger.begin_attempt(order.id, order.total) == AttemptStart(live=started)
        assert await d.ledger.fail(started.id, declined=True, reason="card_declined")
        again = await d.ledger.begin_attempt(order.id, order.total)  # a new attempt may start
        assert again.started is not None and again.started.id != started.id
        assert await d.ledger.fail(again.started.id, declined=True, reason="card_declined")

        async def no_event(uow: object, order: object) -> None:
            return None

        cancelled = await d.store.change_status(
            order.id, domain.PENDING_PAYMENT, domain.CANCELLED, on_changed=no_event
        )
        assert cancelled is not None
        assert await d.ledger.begin_attempt(order.id, order.total) == AttemptStart(
            status=domain.CANCELLED
        )
        async with d.db.reading() as conn:
            live = await conn.execute(
                sa.select(payments.c.id).where(
                    payments.c.order_id == order.id, payments.c.status == "PROCESSING"
                )
            )
            assert live.all() == []
