"""/api/v1/cart: the caller's cart (CartService)."""

from __future__ import annotations

from ec_recommend._gen.ecommerce import cart as pb
from ec_recommend.edge.gateway.request import ApiRequest
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.edge.gateway.schema import ID, Integer, Object

CART = "cart"
MAX_QUANTITY = 999  # of one product in a cart (the cart service's limit)

ADD_ITEM = Object(
    {"product_id": ID, "quantity": Integer(1, MAX_QUANTITY)},
    required=("product_id",),
    description="quantity defaults to 1; adding a product already in the cart adds to it",
)
SET_QUANTITY = Object(
    {"quantity": Integer(0, MAX_QUANTITY, description="0 removes the item")},
    required=("quantity",),
)


def _carts(request: ApiRequest) -> pb.CartServiceStub:
    return request.stub(pb.CartServiceStub, CART)


async def get_cart(request: ApiRequest) -> pb.Cart:
    return await _carts(request).get_cart(pb.GetCartRequest(user_id=request.user.user_id))


async def add_cart_item(request: ApiRequest) -> pb.Cart:
    return await _carts(request).add_item(
        pb.AddItemRequest(
            user_id=request.user.user_id,
            product_id=request.body["product_id"],
            quantity=request.body.get("quantity", 1),
        )
    )


async def set_cart_item(request: ApiRequest) -> pb.Cart:
    return await _carts(request).set_item_quantity(
        pb.SetItemQuantityRequest(
            user_id=request.user.user_id,
            product_id=request.params["product_id"],
            quantity=request.body["quantity"],
        )
    )


async def remove_cart_item(request: ApiRequest) -> pb.Cart:
    return await _carts(request).remove_item(
        pb.RemoveItemRequest(user_id=request.user.user_id, product_id=request.params["product_id"])
    )


async def clear_cart(request: ApiRequest) -> None:
    await _carts(request).clear_cart(pb.GetCartRequest(user_id=request.user.user_id))


ITEM = "/api/v1/cart/items/{product_id}"

ENDPOINTS = (
    Endpoint("GET", "/api/v1/cart", get_cart, "The caller's cart", response=pb.Cart),
    Endpoint("DELETE", "/api/v1/cart", clear_cart, "Empty the caller's cart", status=204),
    Endpoint(
        "POST",
        "/api/v1/cart/items",
        add_cart_item,
        "Put a product in the cart",
        body=ADD_ITEM,
        response=pb.Cart,
    ),
    Endpoint(
        "PUT", ITEM, set_cart_item, "Set an item's quantity", body=SET_QUANTITY, response=pb.Cart
    ),
    Endpoint("DELETE", ITEM, remove_cart_item, "Remove an item", response=pb.Cart),
)
