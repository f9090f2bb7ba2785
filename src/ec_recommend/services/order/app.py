"""Composition of the order service: database, clients, payment provider,
handler, and the sweeper that cancels unpaid orders at their payment deadline
and periodically ends abandoned payment attempts (``sweeper``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.registry import ServiceEnv
from ec_recommend.services.order.admission import Admission
from ec_recommend.services.order.attempts import PaymentTiming
from ec_recommend.services.order.checkout import Checkout
from ec_recommend.services.order.fulfilment import Fulfilment
from ec_recommend.services.order.ledger import Ledger
from ec_recommend.services.order.sandbox import open_sandbox
from ec_recommend.services.order.service import OrderService
from ec_recommend.services.order.store import OrderStore
from ec_recommend.services.order.sweeper import PaymentDeadlines
from ec_recommend.services.order.tables import MIGRATIONS

log = logging.getLogger(__name__)


@asynccontextmanager
async def build(env: ServiceEnv) -> AsyncIterator[Sequence[object]]:
    settings = env.config.order
    timing = PaymentTiming(
        call_timeout=settings.payment_call_timeout, resolve_after=settings.payment_resolve_after
    )
    async with (
        open_database(env.config.storage, "order", MIGRATIONS) as db,
        open_sandbox(env.config.storage, latency=settings.sandbox_latency) as provider,
    ):
        env.outboxes.append(db)  # the host relays its events
        store = OrderStore(db)
        ledger = Ledger(db)
        fulfilment = Fulfilment(store, ledger, env.clients, provider, timing)
        checkout = Checkout(
            store,
            ledger,
            env.clients,
            admission=Admission(
                settings.checkout_concurrency,
                queue=settings.checkout_queue,
                wait=settings.checkout_queue_wait,
            ),
            # An order's stock is held past its payment deadline by one more
            # lease, so the timeout sweep, not the lease, decides its fate.
            hold_for=timedelta(
                seconds=settings.payment_timeout + env.config.stock.reservation_lease
            ),
        )
        service = OrderService(store, checkout, fulfilment)
        deadlines = PaymentDeadlines(
            fulfilment,
            store,
            payment_timeout=settings.payment_timeout,
            interval=settings.sweep_interval,
        )
        sweeper = asyncio.create_task(deadlines.run(), name="order-payment-timeout-sweep")
        try:
            yield [service]
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            # Checkouts and payment attempts whose callers left finish before
            # the database closes.
            await checkout.detached.drain(env.config.rpc.drain_timeout)
            await fulfilment.drain(env.config.rpc.drain_timeout)
