"""RecommendationService over gRPC: validation and conversion at the edge."""

from __future__ import annotations

from ec_recommend._gen.ecommerce import recommendation as pb
from ec_recommend.platform.errors import PermissionDenied
from ec_recommend.platform.ids import require_id
from ec_recommend.platform.rpc.context import current_call
from ec_recommend.services.recommendation import domain
from ec_recommend.services.recommendation.recommender import Recommendations, Recommender
from ec_recommend.services.search.service import snapshot_to_pb


def _response(items: Recommendations) -> pb.RecommendationsResponse:
    return pb.RecommendationsResponse(
        items=[
            pb.Recommendation(product=snapshot_to_pb(product), score=s.score, reason=s.reason)
            for product, s in items
        ]
    )


def _user_for(requested: str) -> str:
    """End users get their own recommendations only; internal callers any user's."""
    if requested:
        requested = require_id(requested, "user_id")
    identity = current_call().identity
    if identity is None or identity.is_admin:
        return requested
    if requested and requested != identity.user_id:
        raise PermissionDenied("recommendations are only for the signed-in user")
    return identity.user_id


class RecommendationService(pb.RecommendationServiceBase):
    def __init__(self, recommender: Recommender) -> None:
        self.recommender = recommender

    async def get_product_recommendations(
        self, message: pb.ProductRecommendationsRequest
    ) -> pb.RecommendationsResponse:
        product_id = require_id(message.product_id, "product_id")
        limit = domain.validate_limit(message.limit)
        return _response(await self.recommender.for_product(product_id, limit))

    async def get_user_recommendations(
        self, message: pb.UserRecommendationsRequest
    ) -> pb.RecommendationsResponse:
        limit = domain.validate_limit(message.limit)
        user_id = _user_for(message.user_id)
        return _response(await self.recommender.for_user(user_id, limit))

    async def get_popular_products(
        self, message: pb.PopularProductsRequest
    ) -> pb.RecommendationsResponse:
        limit = domain.validate_limit(message.limit)
        return _response(await self.recommender.popular(limit))
