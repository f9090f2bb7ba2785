"""Connection pooling (seed 10.1): service-to-service calls spread over a
configurable number of HTTP/2 connections per endpoint."""

from __future__ import annotations

import dataclasses

import pytest

from ec_recommend.config import Config
from ec_recommend.platform.rpc.aio_channel import AioChannel
from tests.integration.order.shop import Shop, acting_as, new_user

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("rpc_transport")
async def test_order_service_calls_product_over_every_pooled_connection(
    services, config: Config
) -> None:
    # over sockets: services hosted together would otherwise call each other in process
    rpc = dataclasses.replace(config.rpc, pool_size=3, in_process=False)
    pooled = dataclasses.replace(config, rpc=rpc)
    async with services("product", "cart", "order", config_override=pooled) as hosted:
        shop = Shop(hosted)
        product = await shop.product(stock=100)
        with acting_as(new_user()):
            for _ in range(4):  # each order makes two product calls
                await shop.order((product.id, 1))
        endpoints = hosted.clients.invoker("product").balancer.endpoints
        assert len(endpoints) == 1
        channels = endpoints[0].all_channels
        assert len(channels) == 3
        # Round robin: every connection of the pool carried calls.
        assert all(_connected(channel) for channel in channels)


def _connected(channel: object) -> bool:
    if isinstance(channel, AioChannel):  # the grpcio transport
        return channel.ready
    return bool(channel._connected)  # type: ignore[attr-defined]  # grpclib's own
