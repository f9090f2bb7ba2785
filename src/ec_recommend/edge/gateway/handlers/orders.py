"""/api/v1/orders: placing, paying and following orders (OrderService)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ec_recommend._gen.ecommerce import order as pb
from ec_recommend.edge.gateway.request import ApiRequest, paged
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.edge.gateway.schema import (
    ID,
    SELLER_ID,
    Array,
    Boolean,
    Integer,
    Object,
    String,
    page_query,
)
from ec_recommend.edge.gateway.transcode import message_to_json

ORDER = "order"
STATUSES = ("PENDING_PAYMENT", "PAID", "SHIPPED", "DELIVERED", "CANCELLED")

ORDER_LINE = Object(
    {"product_id": ID, "quantity": Integer(1, 1000)},
    required=("product_id", "quantity"),
)
CREATE_ORDER = Object(
    {
        "items": Array(ORDER_LINE, min_items=1, max_items=100, unique_by="product_id"),
        "from_cart": Boolean(only=True),
    },
    one_of=(("items", "from_cart"),),
    description="either the lines to buy, or from_cart: true to buy the cart",
)
PAYMENT = Object(
    {
        "payment_method": Object(
            {
                "type": String(enum=("card",)),
                "token": String(
                    min_length=1,
                    max_length=200,
                    patterns=("^[\\x20-\\x7e]+$",),
                    hint="printable ASCII",
                    description="e.g. tok_visa",
                ),
            },
            required=("type", "token"),
        )
    },
    required=("payment_method",),
)
UPDATE_STATUS = Object(
    {"status": String(enum=STATUSES), "reason": String(max_length=200)}, required=("status",)
)
LIST_ORDERS = page_query(
    ("created_at", "total_amount"),
    status=String(enum=STATUSES),
    seller_id=replace(SELLER_ID, description="orders with this seller's products"),
    user_id=replace(ID, description="admins: another user's orders"),
)


def _orders(request: ApiRequest) -> pb.OrderServiceStub:
    return request.stub(pb.OrderServiceStub, ORDER)


def _idempotency_key(request: ApiRequest) -> str:
    return request.http.headers.get("Idempotency-Key", "")


async def create_order(request: ApiRequest) -> pb.Order:
    lines = [
        pb.OrderLine(product_id=line["product_id"], quantity=line["quantity"])
        for line in request.body.get("items", [])
    ]
    return await _orders(request).create_order(
        pb.CreateOrderRequest(
            user_id=request.user.user_id,
            items=lines,
            from_cart=request.body.get("from_cart", False),
            idempotency_key=_idempotency_key(request),
        )
    )


async def list_orders(request: ApiRequest) -> dict[str, Any]:
    seller_id = request.query.get("seller_id", "")
    # a seller's view lists orders with its items; otherwise the caller's own
    # (admins may name another user); OrderService enforces who may list what
    user_id = request.query.get("user_id", "" if seller_id else request.user.user_id)
    response = await _orders(request).list_orders(
        pb.ListOrdersRequest(
            page=request.page(),
            user_id=user_id,
            seller_id=seller_id,
            status=request.query.get("status", ""),
        )
    )
    return paged([message_to_json(o) for o in response.orders], response.page)


async def get_order(request: ApiRequest) -> pb.Order:
    return await _orders(request).get_order(pb.GetOrderRequest(order_id=request.params["order_id"]))


async def pay_order(request: ApiRequest) -> pb.PaymentResponse:
    method = request.body["payment_method"]
    return await _orders(request).process_payment(
        pb.ProcessPaymentRequest(
            order_id=request.params["order_id"],
            payment_method=pb.PaymentMethod(type=method["type"], token=method["token"]),
            idempotency_key=_idempotency_key(request),
        )
    )


async def update_order_status(request: ApiRequest) -> pb.Order:
    return await _orders(request).update_order_status(
        pb.UpdateOrderStatusRequest(
            order_id=request.params["order_id"],
            status=request.body["status"],
            reason=request.body.get("reason", ""),
        )
    )


ONE = "/api/v1/orders/{order_id}"

ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/v1/orders",
        create_order,
        "Place an order; stock is reserved (short stock: 409 naming the product)",
        body=CREATE_ORDER,
        response=pb.Order,
        status=201,
        idempotent=True,
    ),
    Endpoint(
        "GET",
        "/api/v1/orders",
        list_orders,
        "The caller's orders (or, with seller_id, orders with that seller's products)",
        query=LIST_ORDERS,
        list_of=pb.Order,
    ),
    Endpoint("GET", ONE, get_order, "An order (owner, its sellers, admin)", response=pb.Order),
    Endpoint(
        "POST",
        ONE + "/payment",
        pay_order,
        "Pay an order (declined: 402)",
        body=PAYMENT,
        response=pb.PaymentResponse,
        idempotent=True,
    ),
    Endpoint(
        "PUT",
        ONE + "/status",
        update_order_status,
        "Cancel (owner), ship or deliver (seller, admin); illegal transitions: 409",
        body=UPDATE_STATUS,
        response=pb.Order,
    ),
)
