"""The sweep finishes what a failed call left undone: a cancellation stands
when the provider fails to refund, and the sweep retries the refund with the
same idempotency key."""

from __future__ import annotations

import pytest

from ec_recommend.platform.errors import Unavailable
from ec_recommend.platform.money import Money
from ec_recommend.platform.storage import open_database
from ec_recommend.services.order import domain
from ec_recommend.services.order.checkout import Checkout
from ec_recommend.services.order.fulfilment import Fulfilment
from ec_recommend.services.order.ledger import Ledger
from ec_recommend.services.order.payments import SandboxPaymentProvider
from ec_recommend.services.order.store import MIGRATIONS, OrderStore
from tests.integration.order.shop import Shop, new_user

pytestmark = pytest.mark.asyncio


class RefundsFailOnce(SandboxPaymentProvider):
    def __init__(self) -> None:
        super().__init__()
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
    ):
        shop = Shop(hosted)
        product = await shop.product(stock=5)
        store, ledger, provider = OrderStore(db), Ledger(db), RefundsFailOnce()
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
