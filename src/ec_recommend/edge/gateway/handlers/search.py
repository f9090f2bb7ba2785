"""/api/v1/search: full-text product search (SearchService)."""

from __future__ import annotations

from typing import Any

from ec_recommend._gen.ecommerce import search as pb
from ec_recommend.edge.gateway.request import ApiRequest, paged
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.edge.gateway.schema import SELLER_ID, Boolean, Integer, String, page_query
from ec_recommend.edge.gateway.transcode import message_to_json

SEARCH = "search"
MAX_PRICE = 10**12

SEARCH_QUERY = page_query(
    ("relevance", "price", "created_at", "name"),
    q=String(
        max_length=200,
        patterns=("^[^\\u0000-\\u001f\\u007f-\\u009f]*$",),
        hint="free of control characters",
        description="words to look for",
    ),
    min_price=Integer(0, MAX_PRICE, description="minor units"),
    max_price=Integer(0, MAX_PRICE, description="minor units"),
    seller_id=SELLER_ID,
    in_stock=Boolean(),
    at_most=(("min_price", "max_price"),),
)


async def search_products(request: ApiRequest) -> dict[str, Any]:
    query = request.query
    response = await request.stub(pb.SearchServiceStub, SEARCH).search_products(
        pb.SearchProductsRequest(
            query=query.get("q", ""),
            min_price=query.get("min_price"),
            max_price=query.get("max_price"),
            seller_id=query.get("seller_id", ""),
            in_stock=query.get("in_stock", False),
            page=request.page(),
        )
    )
    activity = request.activity()
    if activity is not None and query.get("q"):
        activity.search(query=query["q"], user_id=request.user_id)
    return paged([message_to_json(hit) for hit in response.hits], response.page)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/v1/search/products",
        search_products,
        "Search products; items are {product, score}, most relevant first",
        query=SEARCH_QUERY,
        list_of=pb.SearchHit,
    ),
)
