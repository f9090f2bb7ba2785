"""RecommendationService over gRPC, backfilled from real Product and Order services."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend._gen.ecommerce import recommendation as pb
from ec_recommend.config import Config
from ec_recommend.platform.errors import InvalidArgument, NotFound, PermissionDenied
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope
from tests.conftest import ServicesFactory, wait_for

pytestmark = pytest.mark.asyncio

NAMES = ["ワイヤレスイヤホン Pro", "ワイヤレスイヤホン Lite", "イヤホンケース", "マグカップ"]


async def create_catalogue(products: pb_product.ProductServiceStub) -> dict[str, str]:
    ids = {}
    for name in NAMES:
        product = await products.create_product(
            pb_product.CreateProductRequest(
                seller_id="s1",
                name=name,
                base_price=pb_common.Money(amount=1000, currency="JPY"),
                stock_quantity=50,
            )
        )
        ids[name] = product.id
    return ids


async def test_fresh_catalogue_recommends_without_orders(
    services: ServicesFactory, config: Config
) -> None:
    """No OrderService at all: the backfill retries quietly, catalogue data still serves."""
    fast = replace(config, projection_sync_interval=0.2)
    async with services("product", "recommendation", config_override=fast) as hosted:
        ids = await create_catalogue(hosted.clients.stub(pb_product.ProductServiceStub, "product"))
        recs = hosted.clients.stub(pb.RecommendationServiceStub, "recommendation")

        async def popular_ready() -> bool:
            response = await recs.get_popular_products(pb.PopularProductsRequest(limit=10))
            return len(response.items) == len(NAMES)

        await wait_for(popular_ready, timeout=15)
        similar = await recs.get_product_recommendations(
            pb.ProductRecommendationsRequest(product_id=ids["ワイヤレスイヤホン Pro"], limit=3)
        )
        first = similar.items[0]
        assert first.product is not None and first.product.id == ids["ワイヤレスイヤホン Lite"]
        assert first.reason == "similar" and first.score > 0
        assert ids["ワイヤレスイヤホン Pro"] not in {
            i.product.id for i in similar.items if i.product
        }

        with pytest.raises(InvalidArgument):
            await recs.get_popular_products(pb.PopularProductsRequest(limit=51))
        with pytest.raises(InvalidArgument):
            await recs.get_user_recommendations(pb.UserRecommendationsRequest(user_id="x' OR 1"))
        with pytest.raises(InvalidArgument):
            await recs.get_product_recommendations(
                pb.ProductRecommendationsRequest(product_id="not-an-id")
            )
        with pytest.raises(NotFound):
            await recs.get_product_recommendations(
                pb.ProductRecommendationsRequest(product_id=new_id())
            )
        me = Identity(user_id=new_id(), roles=frozenset({"customer"}))
        with call_scope(CallContext(identity=me)):
            with pytest.raises(PermissionDenied):
                await recs.get_user_recommendations(pb.UserRecommendationsRequest(user_id=new_id()))
            mine = await recs.get_user_recommendations(pb.UserRecommendationsRequest())
        assert {i.reason for i in mine.items} == {"popular"}


async def test_paid_orders_drive_bought_together_and_for_you(
    services: ServicesFactory, config: Config
) -> None:
    fast = replace(config, projection_sync_interval=0.2)
    async with services("product", "order", "recommendation", config_override=fast) as hosted:
        ids = await create_catalogue(hosted.clients.stub(pb_product.ProductServiceStub, "product"))
        orders = hosted.clients.stub(pb_order.OrderServiceStub, "order")
        recs = hosted.clients.stub(pb.RecommendationServiceStub, "recommendation")
        pro, case, mug = ids["ワイヤレスイヤホン Pro"], ids["イヤホンケース"], ids["マグカップ"]
        u1, u2, u3, u4 = (new_id() for _ in range(4))
        paid = []
        for user, items in ((u1, [pro, case]), (u2, [pro, case]), (u3, [mug])):
            order = await orders.create_order(
                pb_order.CreateOrderRequest(
                    user_id=user,
                    items=[pb_order.OrderLine(product_id=p, quantity=1) for p in items],
                )
            )
            await orders.process_payment(
                pb_order.ProcessPaymentRequest(
                    order_id=order.id,
                    payment_method=pb_order.PaymentMethod(type="card", token="tok_visa"),
                    idempotency_key=new_id(),
                )
            )
            paid.append(order.id)
        # An unpaid order must not count.
        await orders.create_order(
            pb_order.CreateOrderRequest(
                user_id=u4, items=[pb_order.OrderLine(product_id=pro, quantity=1)]
            )
        )

        async def bought_together() -> list[tuple[str, str]]:
            response = await recs.get_product_recommendations(
                pb.ProductRecommendationsRequest(product_id=pro, limit=5)
            )
            return [(i.product.id, i.reason) for i in response.items if i.product]

        async def case_first() -> bool:
            try:
                return (await bought_together())[:1] == [(case, "bought_together")]
            except NotFound:  # the catalogue projection has not seen the product yet
                return False

        await wait_for(case_first, timeout=20)
        for_you = await recs.get_user_recommendations(
            pb.UserRecommendationsRequest(user_id=u1, limit=5)
        )
        recommended = [i.product.id for i in for_you.items if i.product]
        assert pro not in recommended and case not in recommended
        popular = await recs.get_popular_products(pb.PopularProductsRequest(limit=2))
        assert {i.product.id for i in popular.items if i.product} == {pro, case}
        assert all(i.reason == "popular" for i in popular.items)

        # A paid order cancelled (refunded) is taken back out of the counts.
        async def mug_score() -> float:
            response = await recs.get_popular_products(pb.PopularProductsRequest(limit=10))
            scores = {i.product.id: i.score for i in response.items if i.product}
            return scores.get(mug, 0.0)

        async def mug_sold() -> bool:
            return await mug_score() > 0.5

        async def mug_unsold() -> bool:
            return await mug_score() < 0.01

        await wait_for(mug_sold, timeout=20)
        await orders.update_order_status(
            pb_order.UpdateOrderStatusRequest(order_id=paid[2], status="CANCELLED")
        )

        await wait_for(mug_unsold, timeout=20)
