"""/api/v1/products: catalogue, stock and reviews (ProductService)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.edge.gateway.keys import ACTIVITY, PRODUCT_CACHE
from ec_recommend.edge.gateway.request import ApiRequest, paged
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.edge.gateway.schema import (
    HTTP_URL,
    MONEY,
    SELLER_ID,
    Array,
    Integer,
    Object,
    String,
    page_query,
)
from ec_recommend.edge.gateway.transcode import message_to_json
from ec_recommend.platform.ids import require_id
from ec_recommend.platform.rpc.context import Identity

PRODUCT = "product"
STATUSES = ("active", "out_of_stock", "archived")

SALE_AT_MOST_BASE = ("sale_price.amount", "base_price.amount")
IMAGE = Object(
    {"url": HTTP_URL, "alt_text": String(max_length=300)},
    required=("url",),
)
IMAGES = Array(IMAGE, max_items=20)
CREATE_PRODUCT = Object(
    {
        "name": String(min_length=1, max_length=200),
        "description": String(max_length=10_000),
        "base_price": MONEY,
        "sale_price": MONEY,
        "stock_quantity": Integer(0, 1_000_000_000),
        "images": IMAGES,
    },
    required=("name", "base_price", "stock_quantity"),
    at_most=(SALE_AT_MOST_BASE,),
)
UPDATE_PRODUCT = Object(
    {
        "name": String(min_length=1, max_length=200),
        "description": String(max_length=10_000),
        "base_price": MONEY,
        "sale_price": MONEY,
        "status": String(enum=STATUSES),
        "images": IMAGES,
    },
    nullable=("sale_price",),
    at_most=(SALE_AT_MOST_BASE,),
    description="only the fields given change; sale_price null removes the sale price",
)
UPDATE_STOCK = Object(
    {
        "delta": Integer(-1_000_000_000, 1_000_000_000, description="add (or remove) units"),
        "quantity": Integer(0, 1_000_000_000, description="set the available quantity"),
    },
    one_of=(("delta", "quantity"),),
)
CREATE_REVIEW = Object(
    {"rating": Integer(1, 5), "comment": String(max_length=4000)},
    required=("rating",),
)
LIST_PRODUCTS_SORT = ("created_at", "updated_at", "name", "price", "stock_quantity")
LIST_PRODUCTS = page_query(
    LIST_PRODUCTS_SORT,
    seller_id=SELLER_ID,
    status=String(enum=STATUSES),
)
LIST_REVIEWS = page_query(("created_at", "rating"))


def _products(request: ApiRequest) -> pb.ProductServiceStub:
    return request.stub(pb.ProductServiceStub, PRODUCT)


def _money(value: Mapping[str, Any] | None) -> pb_common.Money | None:
    if value is None:
        return None
    return pb_common.Money(amount=value["amount"], currency=value.get("currency", "JPY"))


def _images(values: list[Mapping[str, str]]) -> list[pb.ProductImage]:
    return [pb.ProductImage(url=i["url"], alt_text=i.get("alt_text", "")) for i in values]


async def list_products(request: ApiRequest) -> dict[str, Any]:
    response = await _products(request).list_products(
        pb.ListProductsRequest(
            page=request.page(),
            seller_id=request.query.get("seller_id", ""),
            status=request.query.get("status", ""),
        )
    )
    return paged([message_to_json(p) for p in response.products], response.page)


def peek_product(request: web.Request, identity: Identity | None) -> bytes | None:
    """A cache hit, answered from memory. Entries are keyed by canonical id, so
    an id in any other spelling misses here and is checked by ``get_product``."""
    product_id = request.match_info["product_id"]
    body = request.app[PRODUCT_CACHE].peek(product_id)
    if body is not None:
        activity = request.app.get(ACTIVITY)
        if activity is not None:
            activity.product_view(
                product_id=product_id, user_id="" if identity is None else identity.user_id
            )
    return body


async def get_product(request: ApiRequest) -> bytes:
    # Read through the product cache (platform/cache.py), which holds the
    # rendered response; product events and this gateway's own writes
    # invalidate it. Canonical ids, so an event's id finds the entry.
    product_id = require_id(request.params["product_id"], "product_id")

    async def load() -> bytes:
        product = await _products(request).get_product(pb.GetProductRequest(product_id=product_id))
        return orjson.dumps(message_to_json(product))

    body = await request.http.app[PRODUCT_CACHE].read_through(product_id, load)
    activity = request.activity()
    if activity is not None:
        activity.product_view(product_id=product_id, user_id=request.user_id)
    return body


async def _invalidate(request: ApiRequest, product_id: str) -> None:
    """Read-your-writes in this gateway, before the product event arrives."""
    await request.http.app[PRODUCT_CACHE].invalidate(product_id)


async def create_product(request: ApiRequest) -> pb.Product:
    body = request.body
    return await _products(request).create_product(
        pb.CreateProductRequest(
            seller_id=request.user.seller_id,
            name=body["name"],
            description=body.get("description", ""),
            base_price=_money(body["base_price"]),
            sale_price=_money(body.get("sale_price")),
            stock_quantity=body["stock_quantity"],
            images=_images(body.get("images", [])),
        )
    )


async def update_product(request: ApiRequest) -> pb.Product:
    body = request.body
    clear_sale = "sale_price" in body and body["sale_price"] is None
    product = await _products(request).update_product(
        pb.UpdateProductRequest(
            product_id=request.params["product_id"],
            name=body.get("name"),
            description=body.get("description"),
            base_price=_money(body.get("base_price")),
            sale_price=_money(body.get("sale_price")),
            clear_sale_price=clear_sale,
            status=body.get("status"),
            images=_images(body.get("images", [])),
            replace_images="images" in body,
        )
    )
    await _invalidate(request, product.id)
    return product


async def archive_product(request: ApiRequest) -> None:
    archived = await _products(request).delete_product(
        pb.GetProductRequest(product_id=request.params["product_id"])
    )
    await _invalidate(request, archived.id)


async def get_stock(request: ApiRequest) -> pb.StockResponse:
    return await _products(request).get_stock(
        pb.GetProductRequest(product_id=request.params["product_id"])
    )


async def update_stock(request: ApiRequest) -> pb.StockResponse:
    if "delta" in request.body:
        operation, quantity = pb.StockOperation.ADD, request.body["delta"]
    else:
        operation, quantity = pb.StockOperation.SET, request.body["quantity"]
    stock = await _products(request).update_stock(
        pb.UpdateStockRequest(
            product_id=request.params["product_id"], operation=operation, quantity=quantity
        )
    )
    await _invalidate(request, stock.product_id)
    return stock


async def list_reviews(request: ApiRequest) -> dict[str, Any]:
    response = await _products(request).list_reviews(
        pb.ListReviewsRequest(product_id=request.params["product_id"], page=request.page())
    )
    return paged([message_to_json(r) for r in response.reviews], response.page)


async def create_review(request: ApiRequest) -> pb.Review:
    return await _products(request).create_review(
        pb.CreateReviewRequest(
            product_id=request.params["product_id"],
            user_id=request.user.user_id,
            rating=request.body["rating"],
            comment=request.body.get("comment", ""),
        )
    )


ONE = "/api/v1/products/{product_id}"

ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/v1/products",
        list_products,
        "List products (default: active and out of stock)",
        query=LIST_PRODUCTS,
        list_of=pb.Product,
    ),
    Endpoint(
        "POST",
        "/api/v1/products",
        create_product,
        "Create a product as the calling seller",
        body=CREATE_PRODUCT,
        response=pb.Product,
        status=201,
        auth="required",
    ),
    Endpoint("GET", ONE, get_product, "A product", response=pb.Product, peek=peek_product),
    Endpoint(
        "PUT",
        ONE,
        update_product,
        "Change a product (owning seller or admin)",
        body=UPDATE_PRODUCT,
        response=pb.Product,
        auth="required",
    ),
    Endpoint(
        "DELETE",
        ONE,
        archive_product,
        "Archive a product (owning seller or admin)",
        status=204,
        auth="required",
    ),
    Endpoint(
        "GET",
        ONE + "/stock",
        get_stock,
        "Available and reserved stock (owning seller or admin)",
        response=pb.StockResponse,
        auth="required",
    ),
    Endpoint(
        "PUT",
        ONE + "/stock",
        update_stock,
        "Add to ({delta}) or set ({quantity}) the available stock",
        body=UPDATE_STOCK,
        response=pb.StockResponse,
        auth="required",
    ),
    Endpoint(
        "GET",
        ONE + "/reviews",
        list_reviews,
        "Reviews of a product",
        query=LIST_REVIEWS,
        list_of=pb.Review,
    ),
    Endpoint(
        "POST",
        ONE + "/reviews",
        create_review,
        "Review a product",
        body=CREATE_REVIEW,
        response=pb.Review,
        status=201,
        auth="required",
    ),
)
