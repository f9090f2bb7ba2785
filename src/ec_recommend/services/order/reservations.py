"""The order service's side of a stock reservation: reserve, confirm, release.

A reservation is a lease at ProductService. Reserving holds the units
briefly; confirming holds them until the order's payment deadline plus a
margin; releasing gives back a reservation no order holds, retried until
acknowledged within bounds (what is still held after that, the lease returns).

A release is the clean-up after a checkout already failed: its caller waits
for the first try only, so the failure is answered at once (a 503 with its
retry hint, not a timeout while ProductService is refusing); the retries go
on in the background.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.detached import Detached
from ec_recommend.platform.errors import (
    Aborted,
    DeadlineExceeded,
    Internal,
    NotFound,
    ServiceError,
    Unavailable,
)
from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.context import call_scope, current_call

log = logging.getLogger(__name__)

DEFAULT_HOLD = timedelta(seconds=1800 + 300)  # payment timeout + lease, as configured by default

# Stock calls that may have failed without a verdict: worth another try.
_TRANSIENT = (Unavailable, DeadlineExceeded, Internal, Aborted)
# Release: tries for a minute. A confirmed reservation's lease runs to the
# payment deadline, so giving up early would hold its units that long.
RELEASE_WITHIN = 60.0
RELEASE_BACKOFF = Backoff(initial_delay=0.2, max_delay=5.0)
CONFIRM_ATTEMPTS = 3


def _transient(exc: Exception) -> bool:
    return isinstance(exc, _TRANSIENT)


@contextmanager
def unbounded_by_caller() -> Iterator[None]:
    """Calls inside are not bounded by the caller's deadline: it may be what
    just ran out, and this work must finish (each call keeps its mesh timeout)."""
    with call_scope(replace(current_call(), deadline=None)):
        yield


class Reservations:
    def __init__(
        self,
        clients: ClientFactory,
        *,
        hold_for: timedelta = DEFAULT_HOLD,
        background: Detached | None = None,
    ) -> None:
        self.clients = clients
        self.hold_for = hold_for  # how long an order's confirmed reservation is held
        # where releases still refused after their first try go on (its owner drains it)
        self.background = background or Detached("stock-release")

    def stub(self) -> pb_product.ProductServiceStub:
        return self.clients.stub(pb_product.ProductServiceStub, "product")

    async def reserve(
        self, order_id: str, lines: Sequence[tuple[str, int]]
    ) -> list[pb_product.Product]:
        """Reserve every line (product id, quantity) or none; the reserved
        products as the reservation left them (none from a ProductService
        that does not answer with them)."""
        request = pb_product.ReserveStockRequest(
            reservation_id=order_id,
            lines=[pb_product.StockLine(product_id=p, quantity=q) for p, q in lines],
        )
        try:
            reserved = await self.stub().reserve_stock(request)
        except _TRANSIENT:
            # The reservation may have landed although the answer did not.
            with unbounded_by_caller():
                await self.release(order_id)
            raise
        return reserved.products

    async def confirm(self, order_id: str) -> None:
        """Hold the reservation until the order's payment deadline (and a margin)."""
        request = pb_product.ConfirmReservationRequest(
            reservation_id=order_id, hold_until=utcnow() + self.hold_for
        )
        stub = self.stub()
        try:
            await with_retry(
                lambda: stub.confirm_reservation(request),
                is_retryable=_transient,
                max_attempts=CONFIRM_ATTEMPTS,
            )
        except RetriesExhausted as exc:
            raise exc.last from None  # the typed error (e.g. UNAVAILABLE with its retry hint)

    async def release(self, order_id: str) -> None:
        """Release a reservation no order holds; never raises. Waits for the
        first try; if that is refused, the retries go on in the background."""
        stub = self.stub()
        request = pb_product.ReservationRequest(reservation_id=order_id)
        try:
            await stub.release_stock(request)
        except _TRANSIENT:
            self.background.start(self._retry_release(stub, request))
        except ServiceError as exc:
            _not_released(order_id, exc)

    async def _retry_release(
        self, stub: pb_product.ProductServiceStub, request: pb_product.ReservationRequest
    ) -> None:
        await asyncio.sleep(RELEASE_BACKOFF.initial_delay)
        try:
            await with_retry(
                lambda: stub.release_stock(request),
                is_retryable=_transient,
                backoff=RELEASE_BACKOFF,
                max_attempts=None,
                deadline=asyncio.get_running_loop().time() + RELEASE_WITHIN,
            )
        except RetriesExhausted as exc:
            log.warning(
                "reservation %s not released (%s); its lease will return it",
                request.reservation_id,
                exc,
            )
        except ServiceError as exc:
            _not_released(request.reservation_id, exc)


def _not_released(order_id: str, exc: ServiceError) -> None:
    if not isinstance(exc, NotFound):  # NotFound: nothing was reserved
        log.error("reservation of unsaved order %s not released: %s", order_id, exc)
