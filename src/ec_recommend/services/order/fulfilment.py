"""What happens to an order after it exists: payment, status changes, stock, timeouts.

The order's status is the truth; its stock reservation at ProductService
follows it (``domain.stock_action``). Status changes commit first, then the
reservation is moved; if that call fails, it is tried again within seconds
in the background (ProductService refusing under load, its circuit open),
and the periodic sweep moves whatever is still left, so a failed call never
leaves stock stuck.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.detached import Detached
from ec_recommend.platform.errors import Aborted, FailedPrecondition, NotFound, ServiceError
from ec_recommend.platform.retry import Backoff
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.services.order import domain, events
from ec_recommend.services.order.attempts import PaymentTiming
from ec_recommend.services.order.cashier import Cashier
from ec_recommend.services.order.ledger import Ledger, Payment
from ec_recommend.services.order.payments import PaymentProvider
from ec_recommend.services.order.store import OrderStore

log = logging.getLogger(__name__)

CAS_ATTEMPTS = 5
# A stock move refused now is tried again this often, this many times (about
# a minute in all); what is still unsettled after that is the sweep's.
SETTLE_RETRY = Backoff(initial_delay=0.2, max_delay=5.0)
SETTLE_TRIES = 16
_CANCEL_BATCH = 100
DEFAULT_TIMING = PaymentTiming()


class Fulfilment:
    def __init__(
        self,
        store: OrderStore,
        ledger: Ledger,
        clients: ClientFactory,
        provider: PaymentProvider,
        timing: PaymentTiming = DEFAULT_TIMING,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.clients = clients
        self.provider = provider
        self.cashier = Cashier(store, ledger, provider, settle=self.settle, timing=timing)
        self._settling = Detached("stock-settle")  # one retry of a refused move per order

    # -- status ------------------------------------------------------------

    async def change_status(self, order: domain.Order, target: str, reason: str) -> domain.Order:
        for _ in range(CAS_ATTEMPTS):
            domain.check_transition(order.status, target, reason)
            if target == domain.CANCELLED:
                updated = await self._cancel(order, reason)
            else:
                updated = await self.store.change_status(
                    order.id,
                    order.status,
                    target,
                    on_changed=events.ON_STATUS[target],
                    items=order.items,
                )
            if updated is not None:
                return await self.settle(updated)
            order = await self.store.get(order.id)  # it changed under us; decide again
        raise Aborted("the order changed concurrently; retry", order_id=order.id)

    async def _cancel(self, order: domain.Order, reason: str) -> domain.Order | None:
        refunds: list[tuple[str, Payment]] = []

        async def record_refund(uow: UnitOfWork) -> None:
            # Read inside the cancelling transaction: whatever was charged for
            # the order is refunded with it, never after.
            payment = await self.ledger.succeeded_payment(uow, order.id)
            if payment is not None:
                refunds.append((await self.ledger.record_refund(uow, order.id, payment), payment))

        async def record_event(uow: UnitOfWork, cancelled: domain.Order) -> None:
            await events.order_cancelled(reason, refunded=bool(refunds))(uow, cancelled)

        updated = await self.store.change_status(
            order.id,
            order.status,
            domain.CANCELLED,
            reason=reason,
            also=record_refund,
            on_changed=record_event,
            items=order.items,
        )
        if updated is not None:
            for refund_id, payment in refunds:
                # The cancellation stands; the sweep retries a refund refused now.
                await self.cashier.refund_now(refund_id, payment)
        return updated

    # -- stock -------------------------------------------------------------

    async def settle(self, order: domain.Order) -> domain.Order:
        """Move the reservation to where the status says it belongs; never raises
        for an unreachable ProductService (it is tried again in the background)."""
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
                self._settle_soon(order.id)
                break
            # The row as the compare-and-set left it; read again only if it lost.
            moved = await self.store.set_stock_state(order, reached)
            order = moved if moved is not None else await self.store.get(order.id)
        if order.status == domain.PAID and order.stock_state == domain.STOCK_RELEASED:
            # Paid for units it no longer holds (its lease ran out while the
            # order service was away and they were sold): never keep the money.
            log.error("order %s was paid but its stock is gone; refunding it", order.id)
            return await self.change_status(order, domain.CANCELLED, domain.STOCK_NOT_HELD)
        return order

    def _settle_soon(self, order_id: str) -> None:
        if self._settling.running(order_id) is None:
            self._settling.start(self._settle_again(order_id), key=order_id)

    async def _settle_again(self, order_id: str) -> None:
        """Try a refused move again until the order's stock is where its status
        says (each try reads the order afresh: it may have moved on)."""
        delays = SETTLE_RETRY.delays()
        for _ in range(SETTLE_TRIES):
            await asyncio.sleep(next(delays))
            try:
                order = await self.settle(await self.store.get(order_id))
            except ServiceError as exc:  # the order database refusing: later
                log.warning("stock of order %s not settled yet: %s", order_id, exc)
                continue
            if domain.stock_action(order.status, order.stock_state) is None:
                return

    # -- payment -----------------------------------------------------------

    async def pay(self, order: domain.Order, token: str) -> Payment:
        """Charge the order's total once; a repeated call returns the first success."""
        return await self.cashier.pay(order, token)

    async def drain(self, timeout: float) -> None:
        await self.cashier.drain(timeout)
        await self._settling.drain(timeout)  # what is left is the sweep's after a restart

    # -- timeouts ----------------------------------------------------------

    async def sweep(self, payment_timeout: float) -> int:
        """End abandoned payment attempts, cancel orders unpaid past the timeout,
        settle lagging stock and retry refunds the provider has not confirmed."""
        await self.cashier.resolve_abandoned()
        cancelled = await self.cancel_unpaid(utcnow() - timedelta(seconds=payment_timeout))
        for order in await self.store.unsettled():
            if self.cashier.is_paying(order.id) or self._settling.running(order.id):
                continue  # the payment or a retry settles it; two moves would race
            await self.settle(order)
        for refund_id, payment in await self.ledger.pending_refunds():
            await self.cashier.refund_now(refund_id, payment)
        return cancelled

    async def cancel_unpaid(self, created_before: datetime) -> int:
        """Cancel the orders created before ``created_before`` that are still unpaid.

        An order with a charge in flight is left as it is: the charge ends
        (or is resolved) first, and a later pass looks at it again.
        """
        cancelled = left = 0
        while True:
            # Orders cancelled here drop out of the query; those left stay at its front.
            batch = await self.store.expired_unpaid(created_before, _CANCEL_BATCH, offset=left)
            for order_id in batch:
                if await self.ledger.live_payment(order_id) is not None:
                    left += 1
                    continue
                order = await self.store.get(order_id)
                try:
                    await self.change_status(order, domain.CANCELLED, domain.PAYMENT_TIMEOUT)
                    cancelled += 1
                except FailedPrecondition:
                    continue  # paid or cancelled meanwhile
                except Aborted:
                    left += 1  # changed meanwhile; the next sweep looks again
            if len(batch) < _CANCEL_BATCH:
                return cancelled
