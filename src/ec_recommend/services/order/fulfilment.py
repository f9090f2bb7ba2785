"""What happens to an order after it exists: payment, status changes, stock, timeouts.

The order's status is the truth; its stock reservation at ProductService
follows it (``domain.stock_action``). Status changes commit first, then the
reservation is moved; if that call fails, the periodic sweep moves it later,
so a failed call never leaves stock stuck.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import (
    Aborted,
    FailedPrecondition,
    NotFound,
    PaymentDeclined,
    ServiceError,
)
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.services.order import domain, events
from ec_recommend.services.order.ledger import Ledger, Payment
from ec_recommend.services.order.payments import PaymentProvider
from ec_recommend.services.order.store import OrderStore
from ec_recommend.services.order.tables import SUCCEEDED

log = logging.getLogger(__name__)

PAYMENT_WAIT = 10.0  # longest a second payment call waits for one in flight
POLL_INTERVAL = 0.05
CAS_ATTEMPTS = 5


class Fulfilment:
    def __init__(
        self,
        store: OrderStore,
        ledger: Ledger,
        clients: ClientFactory,
        provider: PaymentProvider,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.clients = clients
        self.provider = provider

    # -- status ------------------------------------------------------------

    async def change_status(self, order: domain.Order, target: str, reason: str) -> domain.Order:
        for _ in range(CAS_ATTEMPTS):
            domain.check_transition(order.status, target, reason)
            if target == domain.CANCELLED:
                updated = await self._cancel(order, reason)
            else:
                updated = await self.store.change_status(
                    order.id, order.status, target, on_changed=events.ON_STATUS[target]
                )
            if updated is not None:
                return await self.settle(updated)
            order = await self.store.get(order.id)  # it changed under us; decide again
        raise Aborted("the order changed concurrently; retry", order_id=order.id)

    async def _cancel(self, order: domain.Order, reason: str) -> domain.Order | None:
        payment = await self.ledger.live_payment(order.id) if order.status == domain.PAID else None
        refund_ids: list[str] = []

        async def record_refund(uow: UnitOfWork) -> None:
            if payment is not None:
                refund_ids.append(await self.ledger.record_refund(uow, order.id, payment))

        updated = await self.store.change_status(
            order.id,
            order.status,
            domain.CANCELLED,
            reason=reason,
            also=record_refund,
            on_changed=events.order_cancelled(reason, refunded=payment is not None),
        )
        if updated is not None and payment is not None:
            try:
                await self._refund(refund_ids[0], payment)
            except ServiceError as exc:
                # The cancellation stands; the refund is recorded and the sweep retries it.
                log.warning("refund of order %s pending: %s", order.id, exc)
        return updated

    async def _refund(self, refund_id: str, payment: Payment) -> None:
        provider_refund_id = await self.provider.refund(
            provider_payment_id=payment.provider_payment_id,
            amount=payment.amount,
            idempotency_key=refund_id,
        )
        await self.ledger.refund_done(refund_id, provider_refund_id)

    # -- stock -------------------------------------------------------------

    async def settle(self, order: domain.Order) -> domain.Order:
        """Move the reservation to where the status says it belongs; never raises
        for an unreachable ProductService (the sweep tries again)."""
        stub = self.clients.stub(pb_product.ProductServiceStub, "product")
        moves = {
            domain.STOCK_RELEASED: stub.release_stock,
            domain.STOCK_COMMITTED: stub.commit_stock,
            domain.STOCK_RESTOCKED: stub.restock_reservation,
        }
        for _ in range(3):
            action = domain.stock_action(order.status, order.stock_state)
            if action is None:
                break
            try:
                await moves[action](pb_product.ReservationRequest(reservation_id=order.id))
                reached = action
            except FailedPrecondition:
                # A racing move got there first (a payment committed what a
                # cancel wants to release, or the reverse).
                reached = {
                    domain.STOCK_RELEASED: domain.STOCK_COMMITTED,
                    domain.STOCK_COMMITTED: domain.STOCK_RELEASED,
                }.get(action, action)
            except NotFound:
                log.error("order %s has no stock reservation", order.id)
                reached = domain.STOCK_RELEASED
            except ServiceError as exc:
                log.warning("stock of order %s not settled yet: %s", order.id, exc)
                break
            await self.store.set_stock_state(order.id, order.stock_state, reached)
            order = await self.store.get(order.id)
        return order

    # -- payment -----------------------------------------------------------

    async def pay(self, order: domain.Order, token: str) -> Payment:
        """Charge the order's total once; a repeated call returns the first success."""
        payment = await self._start_payment(order)
        if payment.status == SUCCEEDED:
            return payment
        try:
            provider_id = await self.provider.charge(
                token=token, amount=order.total, idempotency_key=payment.id
            )
        except PaymentDeclined as exc:
            reason = exc.details.get("decline_code", "declined")
            await asyncio.shield(self.ledger.fail(payment.id, declined=True, reason=reason))
            raise
        except BaseException as exc:
            reason = getattr(exc, "code", type(exc).__name__)
            await asyncio.shield(self.ledger.fail(payment.id, declined=False, reason=reason))
            raise

        async def mark_succeeded(uow: UnitOfWork) -> None:
            await self.ledger.succeed(uow, payment.id, provider_id)

        paid = await self.store.change_status(
            order.id,
            domain.PENDING_PAYMENT,
            domain.PAID,
            payment_id=payment.id,
            also=mark_succeeded,
            on_changed=events.order_paid,
        )
        if paid is None:
            # Cancelled (by its buyer or the timeout) while we charged: give it back.
            await self.provider.refund(
                provider_payment_id=provider_id, amount=order.total, idempotency_key=payment.id
            )
            await self.ledger.fail(payment.id, declined=False, reason="order_cancelled")
            raise FailedPrecondition(
                "the order was cancelled during payment; the charge was refunded",
                reason="order_cancelled",
            )
        await self.settle(paid)
        return Payment(payment.id, order.id, SUCCEEDED, order.total, provider_id, "")

    async def _start_payment(self, order: domain.Order) -> Payment:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PAYMENT_WAIT
        while True:
            # Order first: PAID and its payment's SUCCEEDED commit together, so a
            # PAID order read here has its successful payment visible below.
            current = await self.store.get(order.id)
            live = await self.ledger.live_payment(order.id)
            if live is not None and live.status == SUCCEEDED:
                return live
            if current.status != domain.PENDING_PAYMENT:
                raise FailedPrecondition(
                    f"the order is {current.status}; only unpaid orders can be paid",
                    reason="not_payable",
                    status=current.status,
                )
            if live is None:
                started = await self.ledger.start_payment(order.id, current.total)
                if started is not None:
                    return started
            if loop.time() > deadline:
                raise Aborted("a payment for this order is in progress; retry")
            await asyncio.sleep(POLL_INTERVAL)

    # -- timeouts ----------------------------------------------------------

    async def sweep(self, payment_timeout: float) -> int:
        """Cancel orders unpaid past the timeout; settle any lagging stock."""
        cancelled = 0
        cutoff = utcnow() - timedelta(seconds=payment_timeout)
        for order_id in await self.store.expired_unpaid(cutoff):
            live = await self.ledger.live_payment(order_id)
            if live is not None:
                continue  # a charge is in flight; let it finish first
            order = await self.store.get(order_id)
            try:
                await self.change_status(order, domain.CANCELLED, domain.PAYMENT_TIMEOUT)
                cancelled += 1
            except (FailedPrecondition, Aborted):
                continue  # paid or cancelled meanwhile
        for order in await self.store.unsettled():
            await self.settle(order)
        for refund_id, payment in await self.ledger.pending_refunds():
            try:
                await self._refund(refund_id, payment)
            except ServiceError as exc:
                log.warning("refund %s still pending: %s", refund_id, exc)
        return cancelled
