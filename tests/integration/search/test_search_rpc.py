"""SearchService over gRPC, fed by the backfill from a real ProductService."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend._gen.ecommerce import search as pb
from ec_recommend.config import Config
from ec_recommend.platform.errors import InvalidArgument
from tests.conftest import ServicesFactory, wait_for

pytestmark = pytest.mark.asyncio


def jpy(amount: int) -> pb_common.Money:
    return pb_common.Money(amount=amount, currency="JPY")


async def test_search_over_grpc(services: ServicesFactory, config: Config) -> None:
    fast = replace(config, projection_sync_interval=0.2)
    async with services("product", "search", config_override=fast) as hosted:
        products = hosted.clients.stub(pb_product.ProductServiceStub, "product")
        search = hosted.clients.stub(pb.SearchServiceStub, "search")
        created = {}
        for name, description, price, sale, stock in [
            ("ワイヤレスイヤホン Pro", "ノイズキャンセリング", 19800, 16800, 5),
            ("イヤホンケース", "ワイヤレスイヤホン Pro 用のケース", 1500, None, 0),
            ("マグカップ", "ステンレス", 1980, None, 9),
        ]:
            product = await products.create_product(
                pb_product.CreateProductRequest(
                    seller_id="s1",
                    name=name,
                    description=description,
                    base_price=jpy(price),
                    sale_price=jpy(sale) if sale else None,
                    stock_quantity=stock,
                )
            )
            created[name] = product.id

        async def query(**kwargs: object) -> pb.SearchProductsResponse:
            return await search.search_products(pb.SearchProductsRequest(**kwargs))  # type: ignore[arg-type]

        async def indexed() -> bool:
            return (await query(query="")).page.total_items == 3  # type: ignore[union-attr]

        await wait_for(indexed, timeout=15)
        found = await query(query="ワイヤレスイヤホン Pro")
        assert [h.product.id for h in found.hits] == [  # type: ignore[union-attr]
            created["ワイヤレスイヤホン Pro"],
            created["イヤホンケース"],
        ]
        top = found.hits[0].product
        assert top is not None and top.sale_price is not None and top.sale_price.amount == 16800
        assert found.hits[0].score > found.hits[1].score
        in_stock = await query(query="イヤホン", in_stock=True)
        assert [h.product.id for h in in_stock.hits] == [created["ワイヤレスイヤホン Pro"]]  # type: ignore[union-attr]
        cheap = await query(query="イヤホン", max_price=16799)
        assert [h.product.id for h in cheap.hits] == [created["イヤホンケース"]]  # type: ignore[union-attr]

        for bad in (
            {"page": pb_common.PageRequest(page_size=101)},
            {"page": pb_common.PageRequest(sort_by="stock")},
            {"min_price": 10, "max_price": 5},
            {"query": "x" * 201},
        ):
            with pytest.raises(InvalidArgument):
                await query(**bad)

        await products.delete_product(
            pb_product.GetProductRequest(product_id=created["マグカップ"])
        )

        async def archived_gone() -> bool:
            return not (await query(query="マグ")).hits

        await wait_for(archived_gone, timeout=15)
