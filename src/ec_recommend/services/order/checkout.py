"""CreateOrder: reserve the stock, price the lines, store the order, once per key.

The reservation id is the order id, so ProductService's own idempotency
covers a retried reservation. An idempotency key is claimed in its own table
under a unique constraint before any work happens: of two concurrent
requests with one key exactly one does the work, the other waits for its
order. A request that fails frees its claim, and releases any stock it
reserved, so a retry starts clean.

The reservation answers with the products as it left them, and the lines
are priced from that answer: the prices are those of the moment the units
were taken, and pricing costs no call of its own. A line that cannot be
sold at them (another currency, a total too large) gives the reservation
back.

The reservation is a lease. Before the order row is written, the checkout
confirms it until the order's payment deadline (plus a margin), so an order
never outlives its stock; a reservation whose order never got written runs
out and returns its units by itself. The work runs detached from the
caller's cancellation (a client's deadline running out, a client going
away): the order's commit and the reservation's fate always agree.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from ec_recommend._gen.ecommerce import cart as pb_cart
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.detached import Detached
from ec_recommend.platform.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ServiceError,
)
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.money import Money
from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.context import current_call
from ec_recommend.platform.rpc.dataloader import product_loader
from ec_recommend.services.order import domain, events
from ec_recommend.services.order.admission import Admission
from ec_recommend.services.order.ledger import Claim, Ledger
from ec_recommend.services.order.recent import RecentOrders
from ec_recommend.services.order.reservations import DEFAULT_HOLD, Reservations, unbounded_by_caller
from ec_recommend.services.order.store import OrderStore

log = logging.getLogger(__name__)


class _KeyBusy(Exception):
    """Another request holds this idempotency key and has no order yet."""


CLAIM_WAIT = 10.0  # longest we wait for a concurrent request holding our key
CLAIM_STALE = timedelta(minutes=2)  # a claim this old without its order was abandoned
# waiting for a concurrent request holding our key
CLAIM_POLL = Backoff(initial_delay=0.05, max_delay=0.05, jitter=0.2)
# Reading back whether an order was written, after its write failed.
WRITTEN_ATTEMPTS = 8
WRITTEN_BACKOFF = Backoff(initial_delay=0.1, max_delay=2.0)


class Checkout:
    def __init__(
        self,
        store: OrderStore,
        ledger: Ledger,
        clients: ClientFactory,
        *,
        admission: Admission | None = None,
        hold_for: timedelta = DEFAULT_HOLD,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.clients = clients
        self.admission = admission or Admission(16, queue=64, wait=1.0)
        self.detached = Detached("checkout")  # drained at shutdown, releases included
        self.reservations = Reservations(clients, hold_for=hold_for, background=self.detached)
        self.recent = RecentOrders()  # for their payment, which follows at once

    async def create(
        self, user_id: str, lines: Sequence[tuple[str, int]], *, from_cart: bool, key: str
    ) -> domain.Order:
        if from_cart and lines:
            raise InvalidArgument("give items or from_cart, not both", field="items")
        requested = [] if from_cart else domain.validate_lines(lines)
        if not key:
            return await self.detached.run(self._create(new_id(), user_id, requested, from_cart))
        fingerprint = domain.request_fingerprint(requested, from_cart)

        async def claim_or_find() -> domain.Order:
            outcome = await self.detached.run(
                self._claim_and_create(new_id(), user_id, key, fingerprint, requested, from_cart)
            )
            if isinstance(outcome, domain.Order):
                return outcome
            claim = outcome
            if claim.fingerprint and claim.fingerprint != fingerprint:
                raise AlreadyExists(
                    "this idempotency key was used for a different order request",
                    reason="idempotency_key_reused",
                )
            if claim.order_id:
                found = await self.store.get_many([claim.order_id])
                if found:
                    return found[0]
                if claim.created_at is not None and utcnow() - claim.created_at > CLAIM_STALE:
                    # Its holder died mid-request (no call lives this long): take over.
                    await self.ledger.drop_claim(user_id, key, claim.order_id)
                    raise _KeyBusy()  # claim it again at once
            raise _KeyBusy()

        remaining = current_call().remaining()
        wait = min(CLAIM_WAIT, remaining if remaining is not None else CLAIM_WAIT)
        try:
            return await with_retry(
                claim_or_find,
                is_retryable=lambda exc: isinstance(exc, _KeyBusy),
                backoff=CLAIM_POLL,
                max_attempts=None,
                deadline=asyncio.get_running_loop().time() + wait,
            )
        except RetriesExhausted as exc:
            raise Aborted(
                "a request with this idempotency key is still in progress; retry"
            ) from exc.last

    async def _claim_and_create(
        self,
        order_id: str,
        user_id: str,
        key: str,
        fingerprint: str,
        requested: list[tuple[str, int]],
        from_cart: bool,
    ) -> domain.Order | Claim:
        """Claim the key and, if it was free, create the order: one unit of work
        the caller's cancellation cannot split (a claim nobody works on would
        answer its retries "in progress" until it went stale)."""
        claim = await self.ledger.claim(user_id, key, fingerprint, order_id)
        if claim is not None:
            return claim  # someone else's
        return await self._create_claimed(order_id, user_id, key, requested, from_cart)

    async def _create_claimed(
        self,
        order_id: str,
        user_id: str,
        key: str,
        requested: list[tuple[str, int]],
        from_cart: bool,
    ) -> domain.Order:
        try:
            return await self._create(order_id, user_id, requested, from_cart)
        except BaseException:
            # No order was written (``_place`` checked): a retry may start afresh.
            await self.ledger.drop_claim(user_id, key, order_id)
            raise

    async def _create(
        self, order_id: str, user_id: str, requested: list[tuple[str, int]], from_cart: bool
    ) -> domain.Order:
        if from_cart:
            requested = await self._cart_lines(user_id)
        async with self.admission.slot(current_call().remaining()):
            remaining = current_call().remaining()
            if remaining is not None and remaining <= 0:
                # Nobody waits for this order any more: reserve nothing.
                raise DeadlineExceeded("the request ran out of time before stock was reserved")
            reserved = await self.reservations.reserve(order_id, requested)
        with unbounded_by_caller():
            lines, total = await self._priced(order_id, requested, reserved)
            order = await self._place(order_id, user_id, lines, total)
        if from_cart:
            await self._clear_cart(user_id)
        return order

    async def _place(
        self,
        order_id: str,
        user_id: str,
        lines: tuple[domain.Line, ...],
        total: Money,
    ) -> domain.Order:
        """Confirm the reservation, then write the order: both or neither."""
        try:
            await self.reservations.confirm(order_id)
            order = await self.store.create(
                order_id, user_id, lines, total, created_event=events.order_created_row
            )
        except Exception as exc:
            # The order's commit may have landed although its answer did not.
            found = await self._written(order_id, exc)
            if found is not None:
                return found
            await self.reservations.release(order_id)
            if isinstance(exc, FailedPrecondition) and exc.details.get("reason") == (
                "reservation_expired"
            ):
                raise Aborted(
                    "the stock reservation ran out before the order was placed; retry",
                    reason="reservation_expired",
                ) from None
            raise
        self.recent.remember(order)
        return order

    async def _written(self, order_id: str, failure: Exception) -> domain.Order | None:
        """Whether the order's commit landed, asked until the store answers (within
        bounds). If it never does, ``failure`` stands and the reservation stays held."""
        try:
            found = await with_retry(
                lambda: self.store.get_many([order_id]),
                is_retryable=lambda _: True,  # any failure to read: the answer is still unknown
                backoff=WRITTEN_BACKOFF,
                max_attempts=WRITTEN_ATTEMPTS,
            )
        except RetriesExhausted as exc:
            log.error(
                "could not tell whether order %s was written (%s); its stock stays reserved",
                order_id,
                exc.last,
            )
            raise failure from None
        return found[0] if found else None

    async def _cart_lines(self, user_id: str) -> list[tuple[str, int]]:
        cart = await self.clients.stub(pb_cart.CartServiceStub, "cart").get_cart(
            pb_cart.GetCartRequest(user_id=user_id)
        )
        if not cart.items:
            raise FailedPrecondition("the cart is empty", reason="cart_empty")
        return domain.validate_lines([(item.product_id, item.quantity) for item in cart.items])

    async def _priced(
        self,
        order_id: str,
        requested: list[tuple[str, int]],
        reserved: Sequence[pb_product.Product],
    ) -> tuple[tuple[domain.Line, ...], Money]:
        """The lines at the prices of the reserved products; a failure gives
        the reservation back."""
        try:
            # A ProductService from before reservations answered with their
            # products (mid-upgrade) is asked for them.
            products = reserved or await self._current_products(requested)
            return domain.price_lines(requested, _product_infos(products))
        except Exception:
            await self.reservations.release(order_id)
            raise

    async def _current_products(self, requested: list[tuple[str, int]]) -> list[pb_product.Product]:
        """All products in one batched GetProducts call."""
        loader = product_loader(self.reservations.stub())
        found = await loader.load_many(pid for pid, _ in requested)
        return [product for product in found if product is not None]

    async def _clear_cart(self, user_id: str) -> None:
        try:
            await self.clients.stub(pb_cart.CartServiceStub, "cart").clear_cart(
                pb_cart.GetCartRequest(user_id=user_id)
            )
        except ServiceError:
            # The order stands; a stale cart is an annoyance, not an error.
            log.warning("could not clear the cart of user %s after ordering", user_id)


def _product_infos(products: Sequence[pb_product.Product]) -> dict[str, domain.ProductInfo | None]:
    """What pricing needs of each product, by id (None: it has no price)."""
    infos: dict[str, domain.ProductInfo | None] = {}
    for product in products:
        price = product.sale_price or product.base_price
        infos[product.id] = (
            None
            if price is None
            else domain.ProductInfo(
                product.id,
                product.seller_id,
                product.name,
                Money(price.amount, price.currency),
                product.status,
            )
        )
    return infos
