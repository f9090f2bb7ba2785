"""/api/v1/recommendations: bought together, for you, popular (RecommendationService)."""

from __future__ import annotations

from ec_recommend._gen.ecommerce import recommendation as pb
from ec_recommend.edge.gateway.request import ApiRequest
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.edge.gateway.schema import Integer, Object

RECOMMENDATION = "recommendation"
LIMIT = Object({"limit": Integer(1, 50, description="how many (default 10)")})


def _recs(request: ApiRequest) -> pb.RecommendationServiceStub:
    return request.stub(pb.RecommendationServiceStub, RECOMMENDATION)


async def product_recommendations(request: ApiRequest) -> pb.RecommendationsResponse:
    return await _recs(request).get_product_recommendations(
        pb.ProductRecommendationsRequest(
            product_id=request.params["product_id"], limit=request.query.get("limit", 0)
        )
    )


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
