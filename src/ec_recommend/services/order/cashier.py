"""Charging an order: payment attempts that always end, whoever gives up.

The work of an attempt (its start commit, the provider call, the PAID commit
and the stock settle) runs in a task of its own that the caller awaits
through ``asyncio.shield``: a caller cancelled by its deadline leaves the
attempt running to its end instead of cutting a commit in half. An attempt
nobody ends (the process died) is resolved by asking the provider, on a
retried payment or by the sweep (``attempts``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.detached import Detached
from ec_recommend.platform.errors import Aborted, FailedPrecondition, ServiceError, Unavailable
from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry
from ec_recommend.platform.rpc.context import call_scope, current_call
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.services.order import attempts, domain, events
from ec_recommend.services.order.attempts import PaymentTiming
from ec_recommend.services.order.ledger import AttemptEnded, Ledger, Payment
from ec_recommend.services.order.payments import PaymentProvider
from ec_recommend.services.order.store import OrderStore
from ec_recommend.services.order.tables import SUCCEEDED

log = logging.getLogger(__name__)

T = TypeVar("T")
POLL = Backoff(initial_delay=0.05, max_delay=0.5, multiplier=1.5)
PROVIDER_RETRY = Backoff(initial_delay=0.2, max_delay=2.0)


class InFlight(Aborted):
    """Another attempt of this order is PROCESSING; look again shortly."""

    def __init__(self, order_id: str) -> None:
        super().__init__("a payment for this order is in progress", order_id=order_id)


class Cashier:
    def __init__(
        self,
        store: OrderStore,
        ledger: Ledger,
        provider: PaymentProvider,
        *,
        settle: Callable[[domain.Order], Awaitable[domain.Order]],
        timing: PaymentTiming,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.provider = provider
        self.settle = settle
        self.timing = timing
        self._work = Detached("payment")  # one attempt's work per order id

    async def pay(self, order: domain.Order, token: str) -> Payment:
        """Charge the order's total once; a repeated call returns the first success."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + attempts.wait_budget(self.timing, current_call().remaining())
        try:
            return await with_retry(
                lambda: self._pay_once(order, token, deadline),
                is_retryable=lambda exc: isinstance(exc, InFlight),
                backoff=POLL,
                max_attempts=None,
                deadline=deadline,
            )
        except RetriesExhausted as exc:
            raise Aborted(
                "a payment for this order is in progress; retry",
                reason="payment_in_progress",
                retry_after="1",
            ) from exc.last

    async def _pay_once(self, order: domain.Order, token: str, deadline: float) -> Payment:
        order_id = order.id
        running = self._work.running(order_id)
        if running is not None:
            # Wait for the attempt in flight here, no longer than our budget.
            remaining = deadline - asyncio.get_running_loop().time()
            await asyncio.wait([running], timeout=max(0.0, remaining))
            if not running.done():
                raise InFlight(order_id)
            result = None if running.cancelled() or running.exception() else running.result()
            if isinstance(result, Payment) and result.status == SUCCEEDED:
                return result
            raise InFlight(order_id)  # it failed (its own caller hears why): look again
        return await self._drive(order_id, self._attempt(order, token))

    async def _drive(self, order_id: str, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end even if our caller is cancelled meanwhile."""
        if self._work.running(order_id) is not None:
            work.close()
            raise InFlight(order_id)
        return await self._work.run(_beyond_the_caller(work), key=order_id)

    def is_paying(self, order_id: str) -> bool:
        """True while this process runs payment work for the order."""
        return self._work.running(order_id) is not None

    async def drain(self, timeout: float) -> None:
        """Wait for attempts still running (their callers may have gone)."""
        await self._work.drain(timeout)

    # -- one attempt -------------------------------------------------------

    async def _attempt(self, order: domain.Order, token: str) -> Payment:
        """Start a charge and see it to its end, unless the order has one live
        (the first success is the answer) or can no longer be paid.

        ``order`` may be stale but for its id, total and lines (which never
        change): its status and live charge are read as the attempt starts."""
        start = await self.ledger.begin_attempt(order.id, order.total)
        live = start.live
        if live is not None:
            if live.status == SUCCEEDED:
                return live
            if attempts.is_abandoned(live.started_at, utcnow(), self.timing):
                await self._resolve(live)
            raise InFlight(order.id)
        if start.status:
            raise FailedPrecondition(
                f"the order is {start.status}; only unpaid orders can be paid",
                reason="not_payable",
                status=start.status,
            )
        payment = start.started
        if payment is None:
            raise InFlight(order.id)  # another process started one first
        try:
            async with asyncio.timeout(self.timing.call_timeout):
                provider_id = await self.provider.charge(
                    token=token, amount=order.total, idempotency_key=payment.id
                )
        except Exception as exc:
            ending = attempts.after_charge_error(exc)
            if ending.status == "unknown":
                log.warning("payment %s: no answer from the provider (%r)", payment.id, exc)
                raise Aborted(
                    "the payment provider did not answer; the outcome is checked within "
                    f"{self.timing.resolve_after:.0f}s: pay again then",
                    reason="payment_outcome_unknown",
                    retry_after=str(math.ceil(self.timing.resolve_after)),
                ) from exc
            await self.ledger.fail(
                payment.id, declined=ending.status == "declined", reason=ending.reason
            )
            raise
        return await self._charged(payment, provider_id, order)

    async def _charged(
        self, payment: Payment, provider_id: str, order: domain.Order | None = None
    ) -> Payment:
        """End a charged attempt: the order PAID, or the charge refunded.
        ``order``: the order (stale but for what never changes), when known."""

        async def mark_succeeded(uow: UnitOfWork) -> None:
            await self.ledger.succeed(uow, payment.id, provider_id)

        try:
            if order is not None and self.ledger.pays_at_once:
                paid = await self.ledger.pay_at_once(
                    order, payment.id, provider_id, events.order_paid_row
                )
            else:
                paid = await self.store.change_status(
                    payment.order_id,
                    domain.PENDING_PAYMENT,
                    domain.PAID,
                    payment_id=payment.id,
                    also=mark_succeeded,
                    on_changed=events.order_paid,
                    items=None if order is None else order.items,
                )
        except AttemptEnded:
            return await self._ended_elsewhere(payment, provider_id)
        if paid is not None:
            await self.settle(paid)
            return dataclasses.replace(payment, status=SUCCEEDED, provider_payment_id=provider_id)
        # Cancelled (by its buyer or the timeout) while we charged: give it back.
        refund_id = await self.ledger.refund_charge(payment, provider_id)
        if refund_id is None:
            return await self._ended_elsewhere(payment, provider_id)
        await self.refund_now(
            refund_id, dataclasses.replace(payment, provider_payment_id=provider_id)
        )
        raise _cancelled_during_payment()

    async def _ended_elsewhere(self, payment: Payment, provider_id: str) -> Payment:
        """A concurrent resolver ended the attempt first; answer with its ending."""
        ended = await self.ledger.payment(payment.id)
        if ended.status == SUCCEEDED:
            return ended
        if ended.provider_payment_id == provider_id:
            raise _cancelled_during_payment()
        # Ended as never charged while our charge was landing: only possible
        # when resolve_after was shorter than a call really took. Give it back.
        log.error("payment %s was charged after it was resolved; refunding", payment.id)
        await with_retry(
            lambda: self.provider.refund(
                provider_payment_id=provider_id,
                amount=payment.amount,
                idempotency_key=f"late-{payment.id}",
            ),
            is_retryable=lambda exc: isinstance(exc, Unavailable | TimeoutError),
            backoff=PROVIDER_RETRY,
            max_attempts=5,
        )
        raise Aborted("the payment attempt ended before its charge; it was refunded; pay again")

    async def _resolve(self, payment: Payment) -> Payment | None:
        """End an abandoned attempt by what the provider knows of its charge."""
        try:
            async with asyncio.timeout(self.timing.call_timeout):
                outcome = await self.provider.lookup(payment.id)
        except (ServiceError, TimeoutError) as exc:
            log.warning("payment %s: outcome not known yet (%r)", payment.id, exc)
            return None
        ending = attempts.after_lookup(outcome)
        if ending.status == "charged":
            try:
                return await self._charged(payment, ending.provider_payment_id)
            except FailedPrecondition:
                return None  # refunded: the order had been cancelled
        await self.ledger.fail(
            payment.id, declined=ending.status == "declined", reason=ending.reason
        )
        return None

    async def resolve_abandoned(self) -> int:
        """End the attempts nobody ended (the sweep's part); returns how many."""
        cutoff = utcnow() - timedelta(seconds=self.timing.resolve_after)
        resolved = 0
        for payment in await self.ledger.stale_attempts(cutoff):
            try:
                await self._drive(payment.order_id, self._resolve(payment))
                resolved += 1
            except (ServiceError, InFlight):
                continue  # being ended right now, or ended with its caller's error
        return resolved

    # -- refunds -----------------------------------------------------------

    async def refund_now(self, refund_id: str, payment: Payment) -> None:
        """Ask the provider for a recorded refund; the sweep retries a failure."""
        try:
            await self.refund(refund_id, payment)
        except (ServiceError, TimeoutError) as exc:
            log.warning("refund %s pending: %r", refund_id, exc)

    async def refund(self, refund_id: str, payment: Payment) -> None:
        async with asyncio.timeout(self.timing.call_timeout):
            provider_refund_id = await self.provider.refund(
                provider_payment_id=payment.provider_payment_id,
                amount=payment.amount,
                idempotency_key=refund_id,
            )
        await self.ledger.refund_done(refund_id, provider_refund_id)


async def _beyond_the_caller(work: Coroutine[Any, Any, T]) -> T:
    """``work`` under the caller's identity but not its deadline: the calls it
    makes (the stock settle) must not fail because the caller ran out of time."""
    with call_scope(dataclasses.replace(current_call(), deadline=None)):
        return await work


def _cancelled_during_payment() -> FailedPrecondition:
    return FailedPrecondition(
        "the order was cancelled during payment; the charge was refunded",
        reason="order_cancelled",
    )
