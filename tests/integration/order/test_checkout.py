"""CreateOrder over real gRPC on SQLite and PostgreSQL: totals, reservations,
concurrency, idempotency, ordering from the cart, bad input."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from ec_recommend._gen.ecommerce import cart as pb_cart
from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb
from ec_recommend.platform import errors
from ec_recommend.services.product.service import ProductService
from tests.integration.order.shop import Shop, acting_as, new_user, patient

pytestmark = pytest.mark.asyncio


async def test_order_is_priced_reserved_numbered_and_pending(services) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        tea = await shop.product(stock=5, price=1200, seller_id="s-tea")
        cup = await shop.product(stock=3, price=800, seller_id="s-cup", name="Cup")
        buyer = new_user()
        with acting_as(buyer):
            order = await shop.order((tea.id, 2), (cup.id, 1), (tea.id, 1))
        assert order.status == "PENDING_PAYMENT"
        assert order.user_id == buyer
        assert re.fullmatch(r"EC-\d{8}-\d{6}", order.order_number)
        lines = {i.product_id: i for i in order.items}
        assert (lines[tea.id].quantity, lines[tea.id].line_total.amount) == (3, 3600)
        assert (lines[cup.id].seller_id, lines[cup.id].unit_price.amount) == ("s-cup", 800)
        assert order.total_amount == pb_common.Money(amount=4400, currency="JPY")
        assert await shop.stock(tea.id) == (2, 3)
        assert await shop.stock(cup.id) == (2, 1)
        with acting_as(buyer):
            again = await shop.order((cup.id, 1))
        assert again.order_number != order.order_number


async def test_200_concurrent_orders_for_10_units_then_all_paid(services, config, tmp_path) -> None:
    async with services(
        "product", "cart", "order", config_override=patient(config, tmp_path)
    ) as hosted:
        shop = Shop(hosted)
        product = await shop.product(stock=10)

        async def attempt() -> str | None:
            with acting_as(new_user()):
                try:
                    return (await shop.order((product.id, 1))).id
                except errors.FailedPrecondition as exc:
                    assert exc.details["product_id"] == product.id
                    assert exc.details["reason"] == "insufficient_stock"
                    return None
                except errors.ResourceExhausted as exc:
                    # Shed before pricing (beyond the admission queue): reserved nothing.
                    assert exc.details["reason"] == "overloaded"
                    return None

        results = await asyncio.gather(*(attempt() for _ in range(200)))
        placed = [r for r in results if r is not None]
        assert len(placed) == 10
        assert await shop.stock(product.id) == (0, 10)

        for order_id in placed:  # an internal caller may pay any order
            assert (await shop.pay(order_id)).status == "SUCCEEDED"
        assert await shop.stock(product.id) == (0, 0)
        paid = await shop.orders.list_orders(
            pb.ListOrdersRequest(status="PAID", page=pb_common.PageRequest(page_size=100))
        )
        assert sorted(o.id for o in paid.orders) == sorted(placed)
        # The order service spreads its calls over its pool of channels.
        endpoints = hosted.clients.invoker("product").balancer.endpoints
        assert [len(e.all_channels) for e in endpoints] == [2]


async def test_a_short_line_reserves_nothing(services) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        plenty = await shop.product(stock=10)
        scarce = await shop.product(stock=1)
        with acting_as(new_user()), pytest.raises(errors.FailedPrecondition) as caught:
            await shop.order((plenty.id, 2), (scarce.id, 2))
        assert caught.value.details["product_id"] == scarce.id
        assert await shop.stock(plenty.id) == (10, 0)
        assert await shop.stock(scarce.id) == (1, 0)


async def test_an_order_is_priced_from_its_reservation(services, monkeypatch) -> None:
    """CreateOrder prices its lines from ReserveStock's answer, the products
    as the reservation left them: it asks no GetProducts of its own."""
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        tea = await shop.product(stock=5, price=1200, seller_id="s-tea")
        cup = await shop.product(stock=3, price=800, seller_id="s-cup", name="Cup")

        async def not_asked(*_: object) -> None:
            raise AssertionError("the checkout asked GetProducts")

        monkeypatch.setattr(ProductService, "get_products", not_asked)
        with acting_as(new_user()):
            order = await shop.order((tea.id, 2), (cup.id, 1))
        assert sorted(
            (i.product_id, i.seller_id, i.name, i.unit_price.amount) for i in order.items
        ) == sorted([(tea.id, "s-tea", "Tea", 1200), (cup.id, "s-cup", "Cup", 800)])
        assert order.total_amount.amount == 3200
        assert await shop.stock(tea.id) == (3, 2)


async def test_a_reservation_answered_without_products_is_priced_as_before(
    services, monkeypatch
) -> None:
    """A ProductService from before reservations answered with their products
    (mid-upgrade): the order asks GetProducts for the prices."""
    answer = ProductService._reservation_response

    async def without_products(self: ProductService, *args: object, **_: object) -> object:
        return await answer(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ProductService, "_reservation_response", without_products)
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        tea = await shop.product(stock=5, price=1200, seller_id="s-tea")
        with acting_as(new_user()):
            order = await shop.order((tea.id, 2))
        assert [(i.seller_id, i.name, i.unit_price.amount) for i in order.items] == [
            ("s-tea", "Tea", 1200)
        ]
        assert await shop.stock(tea.id) == (3, 2)


async def test_lines_that_cannot_be_priced_give_their_reservation_back(services) -> None:
    """Lines whose total is past what an order may hold are reserved (the
    reservation knows no totals), then refused by pricing: the order fails
    and every unit is back."""
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        tea = await shop.product(stock=5, price=1200)
        gold = await shop.product(stock=4, price=600_000_000_000, name="Gold")
        with acting_as(new_user()), pytest.raises(errors.InvalidArgument) as caught:
            await shop.order((tea.id, 2), (gold.id, 2))
        assert caught.value.details["field"] == "items"
        assert await shop.stock(tea.id) == (5, 0)
        assert await shop.stock(gold.id) == (4, 0)
        with acting_as(new_user()):  # a smaller order goes through
            assert (await shop.order((tea.id, 2), (gold.id, 1))).total_amount.amount == (
                600_000_002_400
            )


async def test_idempotency_key_sequential_and_concurrent(services) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        product = await shop.product(stock=50)
        other = await shop.product(stock=50)
        buyer = new_user()
        with acting_as(buyer, key="key-1"):
            first = await shop.order((product.id, 2))
            again = await shop.order((product.id, 2))
            assert again.id == first.id
            with pytest.raises(errors.AlreadyExists):
                await shop.order((other.id, 2))
        # The key is the user's: another user's identical key is unrelated.
        with acting_as(new_user(), key="key-1"):
            assert (await shop.order((product.id, 2))).id != first.id
        assert await shop.stock(product.id) == (46, 4)

        with acting_as(buyer, key="key-2"):
            racing = await asyncio.gather(*(shop.order((other.id, 3)) for _ in range(20)))
        assert len({o.id for o in racing}) == 1
        assert await shop.stock(other.id) == (47, 3)

        order_id = racing[0].id
        with acting_as(buyer, key="pay-1"):
            payments = await asyncio.gather(*(shop.pay(order_id) for _ in range(10)))
            later = await shop.pay(order_id)
            with pytest.raises(errors.AlreadyExists):  # the key, with another card
                await shop.pay(order_id, "tok_mastercard")
        assert len({p.payment_id for p in payments} | {later.payment_id}) == 1
        assert {p.provider_payment_id for p in payments} == {later.provider_payment_id}
        with acting_as(buyer):
            mine = await shop.orders.list_orders(pb.ListOrdersRequest())
        assert sorted(o.id for o in mine.orders) == sorted({first.id, order_id})


async def test_order_from_cart_clears_it(services) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        tea = await shop.product(stock=5, price=500)
        buyer = new_user()
        with acting_as(buyer):
            with pytest.raises(errors.FailedPrecondition) as caught:
                await shop.orders.create_order(pb.CreateOrderRequest(from_cart=True))
            assert caught.value.details["reason"] == "cart_empty"
            await shop.carts.add_item(pb_cart.AddItemRequest(product_id=tea.id, quantity=2))
            order = await shop.orders.create_order(pb.CreateOrderRequest(from_cart=True))
            cart = await shop.carts.get_cart(pb_cart.GetCartRequest())
        assert [(i.product_id, i.quantity) for i in order.items] == [(tea.id, 2)]
        assert order.total_amount.amount == 1000
        assert cart.items == []
        assert await shop.stock(tea.id) == (3, 2)


def _lines(n: int, quantity: int = 1) -> list[pb.OrderLine]:
    return [pb.OrderLine(product_id=str(uuid.uuid4()), quantity=quantity) for _ in range(n)]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CreateOrderRequest(), "items"),
        (pb.CreateOrderRequest(items=_lines(101)), "items"),
        (
            pb.CreateOrderRequest(items=[pb.OrderLine(product_id="nope", quantity=1)]),
            "items[0].product_id",
        ),
        (pb.CreateOrderRequest(items=_lines(1, 0)), "items[0].quantity"),
        (pb.CreateOrderRequest(items=_lines(1, -3)), "items[0].quantity"),
        (pb.CreateOrderRequest(items=_lines(1, 2_000_000_000)), "items[0].quantity"),
        (pb.CreateOrderRequest(items=_lines(1), from_cart=True), "items"),
        (pb.CreateOrderRequest(items=_lines(1), idempotency_key="k" * 500), "idempotency_key"),
    ],
)
async def test_bad_order_requests_are_invalid_argument(services, request_, field) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        with acting_as(new_user()), pytest.raises(errors.InvalidArgument) as caught:
            await shop.orders.create_order(request_)
        assert caught.value.details["field"] == field


async def test_bad_ids_and_pages_are_invalid_argument(services) -> None:
    async with services("product", "cart", "order") as hosted:
        shop = Shop(hosted)
        with acting_as(new_user()):
            for call, field in [
                (shop.get("not-an-id"), "order_id"),
                (shop.pay(""), "order_id"),
                (shop.set_status(str(uuid.uuid4()), "SHIPPING"), "status"),
                (
                    shop.orders.list_orders(
                        pb.ListOrdersRequest(page=pb_common.PageRequest(page_size=101))
                    ),
                    "page_size",
                ),
                (shop.orders.list_orders(pb.ListOrdersRequest(status="LOST")), "status"),
                (
                    shop.orders.process_payment(
                        pb.ProcessPaymentRequest(order_id=str(uuid.uuid4()))
                    ),
                    "payment_method.token",
                ),
            ]:
                with pytest.raises(errors.InvalidArgument) as caught:
                    await call
                assert caught.value.details["field"] == field
            with pytest.raises(errors.NotFound):
                await shop.order((str(uuid.uuid4()), 1))
        # Nothing was stored by the rejected requests.
        listed = await shop.orders.list_orders(pb.ListOrdersRequest())
        assert listed.orders == []
