"""Stock never oversells: 200 concurrent reservations race for 10 units."""

from __future__ import annotations

import asyncio

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.platform import errors
from tests.integration.order.shop import patient

pytestmark = pytest.mark.asyncio


async def test_200_concurrent_reservations_for_10_units(services, config, tmp_path) -> None:
    # Generous call timeouts: the race is about correctness, not speed, and
    # 200 writers queue on one SQLite file or a small PostgreSQL pool.
    async with services("product", config_override=patient(config, tmp_path)) as hosted:
        stub = hosted.clients.stub(pb.ProductServiceStub, "product")
        product = await stub.create_product(
            pb.CreateProductRequest(
                seller_id="seller-1",
                name="Limited",
                description="",
                base_price=pb_common.Money(amount=1000, currency="JPY"),
                stock_quantity=10,
            )
        )

        async def reserve(i: int) -> bool:
            try:
                await stub.reserve_stock(
                    pb.ReserveStockRequest(
                        reservation_id=f"order-{i}",
                        lines=[pb.StockLine(product_id=product.id, quantity=1)],
                    )
                )
            except errors.FailedPrecondition as exc:
                assert exc.details["product_id"] == product.id
                assert exc.details["reason"] == "insufficient_stock"
                return False
            return True

        results = await asyncio.gather(*(reserve(i) for i in range(200)))
        assert sum(results) == 10
        stock = await stub.get_stock(pb.GetProductRequest(product_id=product.id))
        assert (stock.available_stock, stock.reserved_stock) == (0, 10)
        after = await stub.get_product(pb.GetProductRequest(product_id=product.id))
        assert after.status == "out_of_stock"
