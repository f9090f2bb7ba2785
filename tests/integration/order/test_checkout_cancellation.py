"""CreateOrder's commit and its stock reservation always agree: a caller
cancelled right after the order's commit, or a commit whose answer was lost,
keeps the order's stock reserved (and held until its payment deadline)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio

from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.config import Config
from ec_recommend.platform import errors
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.host import HostedServices
from ec_recommend.services.order import domain, reservations
from ec_recommend.services.order.checkout import Checkout
from ec_recommend.services.order.ledger import Ledger
from ec_recommend.services.order.store import OrderStore
from ec_recommend.services.order.tables import MIGRATIONS
from tests.conftest import wait_for
from tests.integration.order.shop import Shop, acting_as, new_user

pytestmark = pytest.mark.asyncio

HOLD = timedelta(hours=1)


@pytest_asyncio.fixture
async def shop(services: Any, config: Config) -> AsyncIterator[tuple[Shop, Checkout]]:
    """A product service, and a checkout over a real order database."""
    hosted: HostedServices
    async with (
        services("product", "cart") as hosted,
        open_database(config.storage, "order", MIGRATIONS) as db,
    ):
        checkout = Checkout(OrderStore(db), Ledger(db), hosted.clients, hold_for=HOLD)
        yield Shop(hosted), checkout
        await checkout.detached.drain(10)


async def _expiry(shop: Shop, order_id: str) -> Any:
    """When the order's reservation lease runs out (a confirmation never shortens it)."""
    response = await shop.products.confirm_reservation(
        pb_product.ConfirmReservationRequest(reservation_id=order_id, hold_until=utcnow())
    )
    return response.expires_at


async def test_a_cancellation_landing_after_the_orders_commit_keeps_its_stock(shop) -> None:
    shop, checkout = shop
    tea = await shop.product(stock=5)
    store = checkout.store
    committed, proceed = asyncio.Event(), asyncio.Event()
    create = store.create
    placed: list[domain.Order] = []

    async def commit_then_wait(*args: Any, **kwargs: Any) -> domain.Order:
        order = await create(*args, **kwargs)
        placed.append(order)
        committed.set()
        await proceed.wait()  # the caller's cancellation lands here, after the commit
        return order

    store.create = commit_then_wait  # type: ignore[method-assign]
    buyer = new_user()
    with acting_as(buyer):
        caller = asyncio.create_task(checkout.create(buyer, [(tea.id, 2)], from_cart=False, key=""))
    await committed.wait()
    caller.cancel()
    proceed.set()
    with pytest.raises(asyncio.CancelledError):
        await caller

    await checkout.detached.drain(10)
    order = await store.get(placed[0].id)
    assert order.status == domain.PENDING_PAYMENT
    assert await shop.stock(tea.id) == (3, 2)
    assert await _expiry(shop, order.id) > utcnow() + HOLD - timedelta(minutes=1)


async def test_a_commit_whose_answer_was_lost_keeps_its_stock(shop) -> None:
    shop, checkout = shop
    tea = await shop.product(stock=5)
    store = checkout.store
    create = store.create

    async def commit_then_fail(*args: Any, **kwargs: Any) -> domain.Order:
        await create(*args, **kwargs)
        raise ConnectionResetError("the database connection dropped after COMMIT")

    store.create = commit_then_fail  # type: ignore[method-assign]
    buyer = new_user()
    with acting_as(buyer):
        order = await checkout.create(buyer, [(tea.id, 1)], from_cart=False, key="k-1")
    assert order.status == domain.PENDING_PAYMENT
    assert await shop.stock(tea.id) == (4, 1)


async def test_an_order_that_was_not_written_releases_its_reservation(shop) -> None:
    shop, checkout = shop
    tea = await shop.product(stock=5)

    async def fail(*args: Any, **kwargs: Any) -> domain.Order:
        raise errors.Unavailable("the order database is down")

    checkout.store.create = fail  # type: ignore[method-assign]
    buyer = new_user()
    with acting_as(buyer), pytest.raises(errors.Unavailable):
        await checkout.create(buyer, [(tea.id, 2)], from_cart=False, key="k-2")
    assert await shop.stock(tea.id) == (5, 0)


async def test_a_release_is_retried_until_acknowledged(shop) -> None:
    shop, checkout = shop
    tea = await shop.product(stock=5)
    stub = checkout.reservations.stub()
    refusals = 2

    class FlakyProducts:
        def __getattr__(self, name: str) -> Any:
            return getattr(stub, name)

        async def release_stock(self, request: Any) -> Any:
            nonlocal refusals
            if refusals:
                refusals -= 1
                raise errors.Unavailable("product is restarting")
            return await stub.release_stock(request)

    async def fail(*args: Any, **kwargs: Any) -> domain.Order:
        raise errors.Unavailable("the order database is down")

    flaky = FlakyProducts()
    checkout.reservations.stub = lambda: flaky  # type: ignore[assignment,method-assign,return-value]
    checkout.store.create = fail  # type: ignore[method-assign]
    buyer = new_user()
    with acting_as(buyer), pytest.raises(errors.Unavailable):
        await checkout.create(buyer, [(tea.id, 2)], from_cart=False, key="")
    await wait_for(lambda: refusals == 0)  # retried in the background
    await wait_for(lambda: _stock_is(shop, tea.id, (5, 0)))


async def test_a_refused_release_does_not_hold_the_checkouts_answer(shop, monkeypatch) -> None:
    """A checkout that failed answers its typed error (a 503) at once, even
    while ProductService refuses the release (its circuit open for seconds):
    waiting for the release made the caller's deadline run out (a 504)."""
    shop, checkout = shop
    monkeypatch.setattr(reservations, "RELEASE_WITHIN", 5.0)  # a stuck caller gives up soon
    tea = await shop.product(stock=5)
    stub = checkout.reservations.stub()
    answered = asyncio.Event()
    released_after_the_answer = []

    class RefusingUntilAnswered:
        def __getattr__(self, name: str) -> Any:
            return getattr(stub, name)

        async def release_stock(self, request: Any) -> Any:
            if not answered.is_set():
                raise errors.Unavailable("circuit to product is open", reason="circuit_open")
            released_after_the_answer.append(request.reservation_id)
            return await stub.release_stock(request)

    async def fail(*args: Any, **kwargs: Any) -> domain.Order:
        raise errors.Unavailable("the order database has no connection free", retry_after="1")

    refusing = RefusingUntilAnswered()
    checkout.reservations.stub = lambda: refusing  # type: ignore[assignment,method-assign,return-value]
    checkout.store.create = fail  # type: ignore[method-assign]
    buyer = new_user()
    with acting_as(buyer), pytest.raises(errors.Unavailable) as refused:
        await checkout.create(buyer, [(tea.id, 2)], from_cart=False, key="k-5")
    answered.set()
    assert refused.value.details["retry_after"] == "1"  # the store's own refusal, not a timeout
    await wait_for(lambda: _stock_is(shop, tea.id, (5, 0)))  # and the units still came back
    assert len(released_after_the_answer) == 1


async def _stock_is(shop: Shop, product_id: str, levels: tuple[int, int]) -> bool:
    return await shop.stock(product_id) == levels


async def test_a_caller_cancelled_just_after_claiming_its_key_still_gets_its_order(shop) -> None:
    shop, checkout = shop
    tea = await shop.product(stock=5)
    claimed, proceed = asyncio.Event(), asyncio.Event()
    claim = checkout.ledger.claim

    async def claim_then_wait(*args: Any, **kwargs: Any) -> Any:
        result = await claim(*args, **kwargs)
        claimed.set()
        await proceed.wait()  # the caller's cancellation lands here, the key claimed
        return result

    checkout.ledger.claim = claim_then_wait  # type: ignore[method-assign]
    buyer = new_user()
    with acting_as(buyer):
        caller = asyncio.create_task(
            checkout.create(buyer, [(tea.id, 2)], from_cart=False, key="k-3")
        )
    await claimed.wait()
    caller.cancel()
    proceed.set()
    with pytest.raises(asyncio.CancelledError):
        await caller

    checkout.ledger.claim = claim  # type: ignore[method-assign]
    with acting_as(buyer):  # the client retries with its key: the same order, at once
        order = await checkout.create(buyer, [(tea.id, 2)], from_cart=False, key="k-3")
    assert order.status == domain.PENDING_PAYMENT
    assert await shop.stock(tea.id) == (3, 2)


async def test_a_confirmation_that_keeps_failing_answers_its_typed_error(shop) -> None:
    shop, checkout = shop
    tea = await shop.product(stock=5)
    stub = checkout.reservations.stub()

    class NoConfirmations:
        def __getattr__(self, name: str) -> Any:
            return getattr(stub, name)

        async def confirm_reservation(self, request: Any) -> Any:
            raise errors.Unavailable("the product database has no connection free", retry_after="2")

    refusing = NoConfirmations()
    checkout.reservations.stub = lambda: refusing  # type: ignore[assignment,method-assign,return-value]
    buyer = new_user()
    with acting_as(buyer), pytest.raises(errors.Unavailable) as refused:
        await checkout.create(buyer, [(tea.id, 2)], from_cart=False, key="k-4")
    assert refused.value.details["retry_after"] == "2"  # a 503 with its hint, never a 500
    assert await shop.stock(tea.id) == (5, 0)  # no order, so its reservation was released


async def test_a_failed_write_is_checked_until_the_store_answers_then_released(shop) -> None:
    shop, checkout = shop
    tea = await shop.product(stock=5)
    store = checkout.store
    get_many = store.get_many
    refusals = 2

    async def fail(*args: Any, **kwargs: Any) -> domain.Order:
        raise errors.Unavailable("the order database has no connection free", retry_after="1")

    async def busy_then_read(*args: Any, **kwargs: Any) -> list[domain.Order]:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise errors.Unavailable("the order database has no connection free")
        return await get_many(*args, **kwargs)

    store.create = fail  # type: ignore[method-assign]
    store.get_many = busy_then_read  # type: ignore[method-assign]
    buyer = new_user()
    with acting_as(buyer), pytest.raises(errors.Unavailable):
        await checkout.create(buyer, [(tea.id, 2)], from_cart=False, key="")
    assert refusals == 0
    # No order was written: the (confirmed, long-held) reservation was released.
    assert await shop.stock(tea.id) == (5, 0)
