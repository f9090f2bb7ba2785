"""A hosted service's events reach the subscribed queues through its relay task."""

from __future__ import annotations

from typing import Any

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Config, EventsConfig, RpcConfig, StorageConfig
from ec_recommend.platform.events.aws import queue_url
from ec_recommend.platform.events.envelope import decode
from ec_recommend.platform.events.provision import ProvisionReport
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope
from ec_recommend.runtime.host import host_services

pytestmark = pytest.mark.asyncio

SELLER = Identity(user_id="u-seller", roles=frozenset({"seller"}), seller_id="seller-1")


async def test_product_created_over_grpc_arrives_in_search_and_cache_queues(
    provisioned: ProvisionReport,
    events_config: EventsConfig,
    sqlite_storage: StorageConfig,
    sqs: Any,
) -> None:
    config = Config(storage=sqlite_storage, rpc=RpcConfig(drain_timeout=2.0), events=events_config)
    async with host_services(config, ["product"]) as hosted:
        stub = hosted.clients.stub(pb.ProductServiceStub, "product")
        with call_scope(CallContext(identity=SELLER, request_id="req-42")):
            product = await stub.create_product(
                pb.CreateProductRequest(
                    name="Tea", base_price=pb_common.Money(amount=500, currency="JPY"),
                    stock_quantity=1,
                )
            )  # fmt: skip
        for queue in ("search-index-queue", "cache-invalidation-queue"):
            url = await queue_url(sqs, events_config, queue)
            response = await sqs.receive_message(
                QueueUrl=url, WaitTimeSeconds=10, MessageAttributeNames=["All"]
            )
            (message,) = response["Messages"]
            event = decode(message["Body"])
            assert event.type == "product.created"
            assert event.data.product_id == product.id  # type: ignore[attr-defined]
            assert event.correlation_id == "req-42"
            assert message["MessageAttributes"]["type"]["StringValue"] == "product.created"
        # Not routed to queues whose filter excludes product.created.
        url = await queue_url(sqs, events_config, "order-processing-queue")
        assert "Messages" not in await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
