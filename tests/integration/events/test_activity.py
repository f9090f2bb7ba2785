"""User activity goes straight to the analytics queue, off the request path."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.config import Config, EventsConfig
from ec_recommend.edge.gateway.app import GatewaySetup, create_app
from ec_recommend.platform.events.activity import ActivitySender
from ec_recommend.platform.events.aws import queue_url
from ec_recommend.platform.events.envelope import decode
from ec_recommend.platform.events.provision import ProvisionReport
from ec_recommend.runtime.host import host_services
from ec_recommend.runtime.local_aws import free_port
from tests.conftest import wait_for
from tests.integration.consumers.conftest import no_tokens

pytestmark = pytest.mark.asyncio


async def test_activities_arrive_in_the_analytics_queue(
    provisioned: ProvisionReport, events_config: EventsConfig, sqs: Any
) -> None:
    async with ActivitySender(events_config) as sender:
        for i in range(23):
            sender.product_view(product_id=f"p-{i}", user_id="u-1", session_id="s-1")
        sender.search(query="green tea")
        await wait_for(lambda: sender.sent == 24, timeout=20)
    url = await queue_url(sqs, events_config, "analytics-event-queue")
    received: list[Any] = []
    while len(received) < 24:
        response = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        received.extend(decode(m["Body"]) for m in response.get("Messages", []))
    assert {e.type for e in received} == {"analytics.user_activity"}
    assert sorted(e.data.activity for e in received).count("search") == 1  # type: ignore[attr-defined]


async def test_recording_never_blocks_when_sqs_is_down(events_config: EventsConfig) -> None:
    down = replace(events_config, endpoint_url=f"http://127.0.0.1:{free_port()}")
    async with ActivitySender(down, capacity=100) as sender:
        for i in range(1000):
            sender.product_view(product_id=f"p-{i}")  # synchronous: returns at once
        assert sender.dropped >= 900
        assert sender.sent == 0
    with pytest.raises(ValueError):
        sender.record("purchase")


async def test_gateway_reports_product_views_and_searches(
    provisioned: ProvisionReport, events_config: EventsConfig, sqs: Any, config: Config
) -> None:
    config = replace(
        config,
        events=events_config,
        gateway=replace(config.gateway, rate_limit_anonymous=10_000),
    )
    async with host_services(config, ["product", "search"]) as hosted:
        products = hosted.clients.stub(pb_product.ProductServiceStub, "product")
        product = await products.create_product(
            pb_product.CreateProductRequest(
                seller_id="seller-1",
                name="急須",
                base_price=pb_common.Money(amount=3000, currency="JPY"),
                stock_quantity=3,
            )
        )
        app = create_app(GatewaySetup(config=config, verifier=no_tokens, clients=hosted.clients))
        async with TestClient(TestServer(app)) as http:
            for _ in range(3):
                assert (await http.get(f"/api/v1/products/{product.id}")).status == 200
            assert (await http.get("/api/v1/search/products", params={"q": "急須"})).status == 200
            assert (await http.get("/api/v1/products/not-an-id")).status == 400  # not a view

    url = await queue_url(sqs, events_config, "analytics-event-queue")
    received: list[Any] = []

    async def four_arrived() -> bool:
        response = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        received.extend(decode(m["Body"]).data for m in response.get("Messages", []))
        return len(received) >= 4

    await wait_for(four_arrived, timeout=20)
    assert sorted((a.activity, a.product_id, a.query) for a in received) == [
        ("product_view", product.id, ""),
        ("product_view", product.id, ""),
        ("product_view", product.id, ""),
        ("search", "", "急須"),
    ]
