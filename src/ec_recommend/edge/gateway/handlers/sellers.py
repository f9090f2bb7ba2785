"""/api/v1/sellers/me: the calling seller's sales ledger and product analytics.

routes.yaml lets only the ``seller`` group in; the seller id always comes
from the token, so a seller can name no one else. The read models belong to
the seller and analytics subscribers (SellerService, AnalyticsService).
"""

from __future__ import annotations

from typing import Any

from ec_recommend._gen.ecommerce import analytics as pb_analytics
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend._gen.ecommerce import seller as pb_seller
from ec_recommend.edge.gateway.handlers.products import LIST_PRODUCTS_SORT, PRODUCT, STATUSES
from ec_recommend.edge.gateway.request import ApiRequest, paged
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.edge.gateway.schema import String, page_query
from ec_recommend.edge.gateway.transcode import message_to_json

LEDGER_QUERY = page_query(("occurred_at",))
ANALYTICS_QUERY = page_query(LIST_PRODUCTS_SORT, status=String(enum=STATUSES))

_MONEY_SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}},
}
PRODUCT_ANALYTICS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "product_id": {"type": "string"},
                    "name": {"type": "string"},
                    "status": {"type": "string"},
                    "stock_quantity": {"type": "integer"},
                    "views": {"type": "integer"},
                    "paid_quantity": {"type": "integer"},
                    "paid_orders": {"type": "integer"},
                    "conversion": {"type": "number"},
                    "revenue": _MONEY_SCHEMA,
                },
            },
        },
        "page": {"$ref": "#/components/schemas/PageResponse"},
    },
}


async def my_ledger(request: ApiRequest) -> pb_seller.SellerLedgerResponse:
    return await request.stub(pb_seller.SellerServiceStub, "seller").get_seller_ledger(
        pb_seller.SellerLedgerRequest(seller_id=request.user.seller_id, page=request.page())
    )


async def my_product_analytics(request: ApiRequest) -> dict[str, Any]:
    products = await request.stub(pb_product.ProductServiceStub, PRODUCT).list_products(
        pb_product.ListProductsRequest(
            page=request.page(),
            seller_id=request.user.seller_id,
            status=request.query.get("status", ""),
        )
    )
    if not products.products:
        return paged([], products.page)
    stats = await request.stub(pb_analytics.AnalyticsServiceStub, "analytics").get_product_stats(
        pb_analytics.ProductStatsRequest(product_ids=[p.id for p in products.products])
    )
    items = [
        {
            "product_id": product.id,
            "name": product.name,
            "status": product.status,
            "stock_quantity": product.stock_quantity,
            **{k: v for k, v in message_to_json(stat).items() if k != "product_id"},
        }
        for product, stat in zip(products.products, stats.stats, strict=True)
    ]
    return paged(items, products.page)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/v1/sellers/me/ledger",
        my_ledger,
        "The calling seller's sales ledger (sales and reversals, newest last) and balance",
        query=LEDGER_QUERY,
        response=pb_seller.SellerLedgerResponse,
    ),
    Endpoint(
        "GET",
        "/api/v1/sellers/me/analytics",
        my_product_analytics,
        "Views, paid quantity, conversion and revenue of the calling seller's products",
        query=ANALYTICS_QUERY,
        json_response=PRODUCT_ANALYTICS_SCHEMA,
    ),
)
