"""The sweep finishes what a failed call left undone: a refund the provider
did not confirm (the cancellation stands; the retry reuses the refund's key),
and a stock move ProductService could not take when the order was paid."""

from __future__ import annotations

from typing import Any

import pytest

from ec_recommend.config import Endpoint
from ec_recommend.platform.errors import Unavailable
from ec_recommend.platform.money import Money
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.runtime.local_aws import free_port
from ec_recommend.services.order import domain
from ec_recommend.services.order.checkout import Checkout
from ec_recommend.services.order.fulfilment import Fulfilment
from ec_recommend.services.order.ledger import Ledger
from ec_recommend.services.order.sandbox import SandboxPaymentProvider, open_sandbox
from ec_recommend.services.order.store import OrderStore
from ec_recommend.services.order.tables import MIGRATIONS
from tests.conftest import wait_for
from tests.integration.order.shop import Shop, new_user

pytestmark = pytest.mark.asyncio


class RefundsFailOnce(SandboxPaymentProvider):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.refund_keys: list[str] = []

    async def refund(self, *, provider_payment_id: str, amount: Money, idempotency_key: str) -> str:
        self.refund_keys.append(idempotency_key)
        if len(self.refund_keys) == 1:
            raise Unavailable("provider down")
        return await super().refund(
            provider_payment_id=provider_payment_id, amount=amount, idempotency_key=idempotency_key
        )


async def test_sweep_retries_an_unconfirmed_refund(services, config) -> None:
    async with (
        services("product") as hosted,
        open_database(config.storage, "order", MIGRATIONS) as db,
        open_sandbox(config.storage) as sandbox,
    ):
        shop = Shop(hosted)
        product = await shop.product(stock=5)
        store, ledger, provider = OrderStore(db), Ledger(db), RefundsFailOnce(sandbox.db)
        fulfilment = Fulfilment(store, ledger, hosted.clients, provider)
        order = await Checkout(store, ledger, hosted.clients).create(
            new_user(), [(product.id, 2)], from_cart=False, key=""
        )
        await fulfilment.pay(order, "tok_visa")
        paid = await store.get(order.id)
        cancelled = await fulfilment.change_status(paid, domain.CANCELLED, "changed my mind")
        assert cancelled.status == domain.CANCELLED
        assert await shop.stock(product.id) == (5, 0)
        assert len(await ledger.pending_refunds()) == 1

        await fulfilment.sweep(payment_timeout=3600)
        assert await ledger.pending_refunds() == []
        assert len(set(provider.refund_keys)) == 1  # the retry reused the refund's key
        refund = await ledger.refund_of(order.id)
        assert refund is not None and refund["provider_refund_id"].startswith("re_")


async def test_sweep_commits_stock_a_failed_call_left_reserved(services, config) -> None:
    async with (
        services("product") as hosted,
        open_database(config.storage, "order", MIGRATIONS) as db,
        ClientFactory({"product": [Endpoint("127.0.0.1", free_port())]}) as unreachable,
        open_sandbox(config.storage) as provider,
    ):
        shop = Shop(hosted)
        product = await shop.product(stock=5)
        store, ledger = OrderStore(db), Ledger(db)
        order = await Checkout(store, ledger, hosted.clients).create(
            new_user(), [(product.id, 2)], from_cart=False, key=""
        )
        # Paid while ProductService cannot be reached: the payment stands.
        cut_off = Fulfilment(store, ledger, unreachable, provider)
        payment = await cut_off.pay(order, "tok_visa")
        assert payment.status == "SUCCEEDED"
        paid = await store.get(order.id)
        assert (paid.status, paid.stock_state) == (domain.PAID, domain.STOCK_RESERVED)
        assert await shop.stock(product.id) == (3, 2)

        await cut_off.drain(0)  # its own retries cannot reach ProductService either
        healthy = Fulfilment(store, ledger, hosted.clients, provider)
        await healthy.sweep(payment_timeout=3600)
        assert (await store.get(order.id)).stock_state == domain.STOCK_COMMITTED
        assert await shop.stock(product.id) == (3, 0)


class CommitsRefused:
    """The clients, but ProductService refuses the first ``refusals`` commits
    (its database has no connection free, its circuit is open)."""

    def __init__(self, clients: ClientFactory, refusals: int) -> None:
        self.clients = clients
        self.refusals = refusals

    def stub(self, stub_class: Any, service: str) -> Any:
        stub = self.clients.stub(stub_class, service)
        flaky = self

        class Refusing:
            def __getattr__(self, name: str) -> Any:
                return getattr(stub, name)

            async def commit_stock(self, request: Any) -> Any:
                if flaky.refusals:
                    flaky.refusals -= 1
                    raise Unavailable("the product database has no connection free")
                return await stub.commit_stock(request)

        return Refusing()


async def test_a_refused_stock_move_is_tried_again_before_the_sweep(services, config) -> None:
    """A paid order's units do not stay reserved until the next sweep (30 s by
    default) because ProductService refused the commit once or twice."""
    async with (
        services("product") as hosted,
        open_database(config.storage, "order", MIGRATIONS) as db,
        open_sandbox(config.storage) as provider,
    ):
        shop = Shop(hosted)
        product = await shop.product(stock=5)
        store, ledger = OrderStore(db), Ledger(db)
        order = await Checkout(store, ledger, hosted.clients).create(
            new_user(), [(product.id, 2)], from_cart=False, key=""
        )
        refusing = CommitsRefused(hosted.clients, refusals=2)
        fulfilment = Fulfilment(store, ledger, refusing, provider)  # type: ignore[arg-type]
        payment = await fulfilment.pay(order, "tok_visa")
        assert payment.status == "SUCCEEDED"

        async def committed() -> bool:
            return (await store.get(order.id)).stock_state == domain.STOCK_COMMITTED

        await wait_for(committed)  # no sweep runs here
        assert refusing.refusals == 0
        assert await shop.stock(product.id) == (3, 0)
        await fulfilment.drain(5)
