"""CreateOrder: price the lines, reserve the stock, store the order, once per key.

The reservation id is the order id, so ProductService's own idempotency
covers a retried reservation. An idempotency key is claimed in its own table
under a unique constraint before any work happens: of two concurrent
requests with one key exactly one does the work, the other waits for its
order. A request that fails frees its claim, and releases any stock it
reserved, so a retry starts clean.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from ec_recommend._gen.ecommerce import cart as pb_cart
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    ServiceError,
    Unavailable,
)
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.money import Money
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.context import call_scope, current_call
from ec_recommend.platform.rpc.dataloader import product_loader
from ec_recommend.services.order import domain, events
from ec_recommend.services.order.ledger import Ledger
from ec_recommend.services.order.store import OrderStore

log = logging.getLogger(__name__)

CLAIM_WAIT = 10.0  # longest we wait for a concurrent request holding our key
CLAIM_STALE = timedelta(minutes=2)  # a claim this old without its order was abandoned
POLL_INTERVAL = 0.05


class Checkout:
    def __init__(
        self, store: OrderStore, ledger: Ledger, clients: ClientFactory, *, concurrency: int = 16
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.clients = clients
        # A bulkhead in front of ProductService's stock writes: under a rush
        # only this many checkouts price and reserve at once, so the later
        # ones see the stock the earlier ones took and fail fast without a
        # doomed reservation.
        self._admission = asyncio.Semaphore(concurrency)

    def _product_stub(self) -> pb_product.ProductServiceStub:
        return self.clients.stub(pb_product.ProductServiceStub, "product")

    async def create(
        self, user_id: str, lines: Sequence[tuple[str, int]], *, from_cart: bool, key: str
    ) -> domain.Order:
        if from_cart and lines:
            raise InvalidArgument("give items or from_cart, not both", field="items")
        requested = [] if from_cart else domain.validate_lines(lines)
        if not key:
            return await self._create(new_id(), user_id, requested, from_cart)
        fingerprint = domain.request_fingerprint(requested, from_cart)
        loop = asyncio.get_running_loop()
        remaining = current_call().remaining()
        deadline = loop.time() + min(CLAIM_WAIT, remaining if remaining is not None else CLAIM_WAIT)
        while True:
            order_id = new_id()
            claim = await self.ledger.claim(user_id, key, fingerprint, order_id)
            if claim is None:
                try:
                    return await self._create(order_id, user_id, requested, from_cart)
                except BaseException:
                    await asyncio.shield(self.ledger.drop_claim(user_id, key, order_id))
                    raise
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
                    continue
            if loop.time() > deadline:
                raise Aborted("a request with this idempotency key is still in progress; retry")
            await asyncio.sleep(POLL_INTERVAL)

    async def _create(
        self, order_id: str, user_id: str, requested: list[tuple[str, int]], from_cart: bool
    ) -> domain.Order:
        if from_cart:
            requested = await self._cart_lines(user_id)
        async with self._admission:
            lines, total = await self._price(requested)
            await self._reserve(order_id, lines)
        try:
            order = await self.store.create(
                order_id, user_id, lines, total, on_created=events.order_created
            )
        except BaseException:
            await asyncio.shield(self._release(order_id))
            raise
        if from_cart:
            await self._clear_cart(user_id)
        return order

    async def _cart_lines(self, user_id: str) -> list[tuple[str, int]]:
        cart = await self.clients.stub(pb_cart.CartServiceStub, "cart").get_cart(
            pb_cart.GetCartRequest(user_id=user_id)
        )
        if not cart.items:
            raise FailedPrecondition("the cart is empty", reason="cart_empty")
        return domain.validate_lines([(item.product_id, item.quantity) for item in cart.items])

    async def _price(
        self, requested: list[tuple[str, int]]
    ) -> tuple[tuple[domain.Line, ...], Money]:
        """All products in one batched GetProducts call, at their current prices."""
        loader = product_loader(self._product_stub())
        found = await loader.load_many(pid for pid, _ in requested)
        infos: dict[str, domain.ProductInfo | None] = {}
        for (pid, _), product in zip(requested, found, strict=True):
            price = product.sale_price or product.base_price if product else None
            infos[pid] = (
                None
                if product is None or price is None
                else domain.ProductInfo(
                    pid,
                    product.seller_id,
                    product.name,
                    Money(price.amount, price.currency),
                    product.status,
                    product.stock_quantity,
                )
            )
        return domain.price_lines(requested, infos)

    async def _reserve(self, order_id: str, lines: Sequence[domain.Line]) -> None:
        request = pb_product.ReserveStockRequest(
            reservation_id=order_id,
            lines=[
                pb_product.StockLine(product_id=x.product_id, quantity=x.quantity) for x in lines
            ],
        )
        try:
            await self._product_stub().reserve_stock(request)
        except (Unavailable, DeadlineExceeded, Internal):
            # The reservation may have landed although the answer did not.
            await asyncio.shield(self._release(order_id))
            raise

    async def _release(self, order_id: str) -> None:
        # Not bounded by the caller's deadline: it may be what just ran out.
        with call_scope(replace(current_call(), deadline=None)):
            try:
                await self._product_stub().release_stock(
                    pb_product.ReservationRequest(reservation_id=order_id)
                )
            except NotFound:
                pass  # nothing was reserved
            except ServiceError as exc:
                log.error("reservation of unsaved order %s not released: %s", order_id, exc)

    async def _clear_cart(self, user_id: str) -> None:
        try:
            await self.clients.stub(pb_cart.CartServiceStub, "cart").clear_cart(
                pb_cart.GetCartRequest(user_id=user_id)
            )
        except ServiceError:
            # The order stands; a stale cart is an annoyance, not an error.
            log.warning("could not clear the cart of user %s after ordering", user_id)
