"""Recommendations for a product the recommendation service has not seen yet."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ec_recommend.platform.ids import new_id
from tests.conftest import wait_for
from tests.integration.gateway.conftest import GatewayUnderTest, gateway_config, running_gateway

pytestmark = pytest.mark.asyncio

auth = GatewayUnderTest.auth


async def test_a_product_the_catalogue_has_gets_popular_items_until_its_event_arrives(
    tmp_path: Path,
) -> None:
    # one projection pass at start, none after: a product created later stays unseen
    config = replace(gateway_config(tmp_path), projection_sync_interval=0)
    services = ("user", "product", "recommendation")
    body = {"base_price": {"amount": 1000}, "stock_quantity": 3}
    async with running_gateway(config, services) as gateway:
        created = await gateway.http.post(
            "/api/v1/products", json={"name": "Teapot", **body}, headers=auth("seller-a")
        )
        teapot = (await created.json())["id"]
    async with running_gateway(config, services) as gateway:
        http = gateway.http

        async def teapot_is_known() -> bool:
            popular = await (await http.get("/api/v1/recommendations/popular")).json()
            return [i["product"]["id"] for i in popular["items"]] == [teapot]

        await wait_for(teapot_is_known, timeout=10)  # the start's one projection pass
        created = await http.post(
            "/api/v1/products", json={"name": "Kettle", **body}, headers=auth("seller-a")
        )
        kettle = (await created.json())["id"]
        assert (await http.get(f"/api/v1/products/{kettle}")).status == 200

        answer = await http.get(f"/api/v1/recommendations/products/{kettle}")
        assert answer.status == 200, await answer.text()
        items = (await answer.json())["items"]
        assert [(i["product"]["id"], i["reason"]) for i in items] == [(teapot, "popular_fallback")]

        missing = await http.get(f"/api/v1/recommendations/products/{new_id()}")
        assert missing.status == 404
        assert (await missing.json())["code"] == "NOT_FOUND"
