"""CartService over real gRPC on both engines: editing, live prices, stock
limits, privacy, bad input."""

from __future__ import annotations

import uuid

import pytest

from ec_recommend._gen.ecommerce import cart as pb
from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform import errors
from tests.integration.order.shop import Shop, acting_as, new_user

pytestmark = pytest.mark.asyncio


async def test_add_merges_set_removes_and_clear_empties(services) -> None:
    async with services("product", "cart") as hosted:
        shop = Shop(hosted)
        tea = await shop.product(stock=10, price=300, name="Tea")
        cup = await shop.product(stock=10, price=1000, name="Cup")
        with acting_as(new_user()):
            await shop.carts.add_item(pb.AddItemRequest(product_id=tea.id, quantity=2))
            cart = await shop.carts.add_item(pb.AddItemRequest(product_id=tea.id, quantity=3))
            assert [(i.product_id, i.quantity) for i in cart.items] == [(tea.id, 5)]
            cart = await shop.carts.add_item(pb.AddItemRequest(product_id=cup.id, quantity=1))
            assert cart.total == pb_common.Money(amount=2500, currency="JPY")
            first = cart.items[0]
            assert (first.name, first.unit_price.amount, first.line_total.amount) == (
                "Tea",
                300,
                1500,
            )
            assert first.available
            cart = await shop.carts.set_item_quantity(
                pb.SetItemQuantityRequest(product_id=tea.id, quantity=1)
            )
            assert cart.total.amount == 1300
            cart = await shop.carts.set_item_quantity(
                pb.SetItemQuantityRequest(product_id=tea.id, quantity=0)
            )
            assert [i.product_id for i in cart.items] == [cup.id]
            cart = await shop.carts.remove_item(pb.RemoveItemRequest(product_id=cup.id))
            assert cart.items == [] and cart.total.amount == 0
            await shop.carts.add_item(pb.AddItemRequest(product_id=cup.id, quantity=1))
            await shop.carts.clear_cart(pb.GetCartRequest())
            assert (await shop.carts.get_cart(pb.GetCartRequest())).items == []


async def test_cart_shows_the_current_price_and_availability(services) -> None:
    async with services("product", "cart") as hosted:
        shop = Shop(hosted)
        tea = await shop.product(stock=3, price=500)
        buyer = new_user()
        with acting_as(buyer):
            await shop.carts.add_item(pb.AddItemRequest(product_id=tea.id, quantity=2))
        await shop.products.update_product(
            pb_product.UpdateProductRequest(
                product_id=tea.id, sale_price=pb_common.Money(amount=400, currency="JPY")
            )
        )
        with acting_as(buyer):
            cart = await shop.carts.get_cart(pb.GetCartRequest())
        assert (cart.items[0].unit_price.amount, cart.total.amount) == (400, 800)
        await shop.products.delete_product(pb_product.GetProductRequest(product_id=tea.id))
        with acting_as(buyer):
            cart = await shop.carts.get_cart(pb.GetCartRequest())
        assert not cart.items[0].available
        assert cart.total.amount == 0


async def test_more_than_the_stock_or_an_archived_product_is_refused(services) -> None:
    async with services("product", "cart") as hosted:
        shop = Shop(hosted)
        tea = await shop.product(stock=3)
        gone = await shop.product(stock=3)
        await shop.products.delete_product(pb_product.GetProductRequest(product_id=gone.id))
        with acting_as(new_user()):
            await shop.carts.add_item(pb.AddItemRequest(product_id=tea.id, quantity=2))
            with pytest.raises(errors.FailedPrecondition) as short:
                await shop.carts.add_item(pb.AddItemRequest(product_id=tea.id, quantity=2))
            assert short.value.details["product_id"] == tea.id
            assert short.value.details["reason"] == "insufficient_stock"
            with pytest.raises(errors.FailedPrecondition):
                await shop.carts.set_item_quantity(
                    pb.SetItemQuantityRequest(product_id=tea.id, quantity=4)
                )
            with pytest.raises(errors.FailedPrecondition) as archived:
                await shop.carts.add_item(pb.AddItemRequest(product_id=gone.id, quantity=1))
            assert archived.value.details == {
                "product_id": gone.id,
                "reason": "product_archived",
            }
            with pytest.raises(errors.NotFound):
                await shop.carts.add_item(
                    pb.AddItemRequest(product_id=str(uuid.uuid4()), quantity=1)
                )
            cart = await shop.carts.get_cart(pb.GetCartRequest())
        assert [(i.product_id, i.quantity) for i in cart.items] == [(tea.id, 2)]


async def test_carts_are_private(services) -> None:
    async with services("product", "cart") as hosted:
        shop = Shop(hosted)
        tea = await shop.product(stock=3)
        owner = new_user()
        with acting_as(owner):
            await shop.carts.add_item(pb.AddItemRequest(product_id=tea.id, quantity=1))
        with acting_as(new_user()):
            with pytest.raises(errors.NotFound):
                await shop.carts.get_cart(pb.GetCartRequest(user_id=owner))
            with pytest.raises(errors.NotFound):
                await shop.carts.clear_cart(pb.GetCartRequest(user_id=owner))
            assert (await shop.carts.get_cart(pb.GetCartRequest())).items == []
        with acting_as(new_user(), admin=True):
            cart = await shop.carts.get_cart(pb.GetCartRequest(user_id=owner))
        assert [i.product_id for i in cart.items] == [tea.id]


@pytest.mark.parametrize(
    ("product_id", "quantity", "field"),
    [
        ("not-an-id", 1, "product_id"),
        ("", 1, "product_id"),
        (str(uuid.uuid4()), 0, "quantity"),
        (str(uuid.uuid4()), -1, "quantity"),
        (str(uuid.uuid4()), 1_000_000, "quantity"),
    ],
)
async def test_bad_cart_input_is_invalid_argument(services, product_id, quantity, field) -> None:
    async with services("product", "cart") as hosted:
        shop = Shop(hosted)
        with acting_as(new_user()), pytest.raises(errors.InvalidArgument) as caught:
            await shop.carts.add_item(pb.AddItemRequest(product_id=product_id, quantity=quantity))
        assert caught.value.details["field"] == field
        with pytest.raises(errors.InvalidArgument) as anonymous:  # internal calls name the user
            await shop.carts.get_cart(pb.GetCartRequest())
        assert anonymous.value.details["field"] == "user_id"
