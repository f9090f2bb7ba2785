"""/api/v1/recommendations: bought together, for you, popular (RecommendationService)."""

from __future__ import annotations

from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend._gen.ecommerce import recommendation as pb
from ec_recommend.edge.gateway.request import ApiRequest
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.edge.gateway.schema import Integer, Object
from ec_recommend.platform import errors

RECOMMENDATION = "recommendation"
# The reason of popular items given for a product the recommendation
# service has not seen yet (its product event is still on the way).
POPULAR_FALLBACK = "popular_fallback"
DEFAULT_LIMIT, LIMIT_MAX = 10, 50
LIMIT = Object({"limit": Integer(1, LIMIT_MAX, description="how many (default 10)")})


def _recs(request: ApiRequest) -> pb.RecommendationServiceStub:
    return request.stub(pb.RecommendationServiceStub, RECOMMENDATION)


async def product_recommendations(request: ApiRequest) -> pb.RecommendationsResponse:
    product_id, limit = request.params["product_id"], request.query.get("limit", 0)
    try:
        return await _recs(request).get_product_recommendations(
            pb.ProductRecommendationsRequest(product_id=product_id, limit=limit)
        )
    except errors.NotFound:
        pass
    # The product service is the authority on whether the product exists: a
    # product it returns gets popular items (the recommendation projection
    # catches up with its event later); one it does not know stays a 404.
    await request.stub(pb_product.ProductServiceStub, "product").get_product(
        pb_product.GetProductRequest(product_id=product_id)
    )
    wanted = limit or DEFAULT_LIMIT
    popular = await _recs(request).get_popular_products(
        pb.PopularProductsRequest(limit=min(wanted + 1, LIMIT_MAX))
    )
    items = [i for i in popular.items if i.product is None or i.product.id != product_id]
    for item in items:
        item.reason = POPULAR_FALLBACK
    return pb.RecommendationsResponse(items=items[:wanted])


async def recommendations_for_you(request: ApiRequest) -> pb.RecommendationsResponse:
    user_id = request.identity.user_id if request.identity is not None else ""
    return await _recs(request).get_user_recommendations(
        pb.UserRecommendationsRequest(user_id=user_id, limit=request.query.get("limit", 0))
    )


async def popular_products(request: ApiRequest) -> pb.RecommendationsResponse:
    return await _recs(request).get_popular_products(
        pb.PopularProductsRequest(limit=request.query.get("limit", 0))
    )


BASE = "/api/v1/recommendations"

ENDPOINTS = (
    Endpoint(
        "GET",
        BASE + "/products/{product_id}",
        product_recommendations,
        "Products bought together with, or similar to, a product",
        query=LIMIT,
        response=pb.RecommendationsResponse,
    ),
    Endpoint(
        "GET",
        BASE + "/for-you",
        recommendations_for_you,
        "Personalised when authenticated, else popular",
        query=LIMIT,
        response=pb.RecommendationsResponse,
    ),
    Endpoint(
        "GET",
        BASE + "/popular",
        popular_products,
        "Popular products",
        query=LIMIT,
        response=pb.RecommendationsResponse,
    ),
)
