"""Short client deadlines (``X-Request-Timeout``) through the real gateway.

A caller that gives itself 2 ms gets its 504, and nobody else notices: the
product circuit stays closed, every other caller (a checkout included) is
served, ``/readyz`` stays 200, and no unit of stock is lost.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ec_recommend.config import Config, GatewayConfig, RpcConfig, StorageConfig
from tests.chaos.invariants import check_stock, stock_levels
from tests.integration.gateway.conftest import GatewayUnderTest, running_gateway

pytestmark = [pytest.mark.asyncio, pytest.mark.chaos]

SERVICES = ("user", "product", "cart", "order")
# From "gone before it left" to "in flight when it ran out".
SHORT_DEADLINES = ("0.001", "0.002", "0.003", "0.005", "0.008", "0.013", "0.021", "0.034")


def chaos_config(storage: StorageConfig, *, in_process: bool = True) -> Config:
    # the packaged anonymous tier (100 a minute): the fault stays well inside it
    return Config(
        storage=storage,
        rpc=RpcConfig(drain_timeout=2.0, default_timeout=5.0, in_process=in_process),
        gateway=replace(GatewayConfig(), rate_limit_anonymous=100),
    )


async def short_get(gateway: GatewayUnderTest, timeout: str) -> tuple[int, dict[str, Any]]:
    response = await gateway.http.get("/api/v1/products", headers={"X-Request-Timeout": timeout})
    return response.status, await response.json()


# The deadline runs out in the services' own process, or on the way over loopback.
@pytest.mark.parametrize("in_process", [True, False], ids=["in_process", "socket"])
async def test_short_client_deadlines_never_open_a_circuit(
    storage: StorageConfig, tmp_path: Path, in_process: bool
) -> None:
    config = chaos_config(storage, in_process=in_process)
    async with running_gateway(config, SERVICES) as gateway:
        http, seller = gateway.http, gateway.auth("seller-a")
        created = await http.post(
            "/api/v1/products",
            json={
                "name": "Tea",
                "description": "",
                "base_price": {"amount": 1200, "currency": "JPY"},
                "stock_quantity": 5,
            },
            headers=seller,
        )
        assert created.status == 201, await created.text()
        product_id = (await created.json())["id"]
        before = await stock_levels(storage)

        # one after the other, then all at once: 40 callers out of budget
        answers = [await short_get(gateway, t) for t in SHORT_DEADLINES * 2]
        answers += await asyncio.gather(*(short_get(gateway, t) for t in SHORT_DEADLINES * 3))
        statuses = {status for status, _ in answers}
        assert statuses <= {200, 504}, answers
        assert 504 in statuses  # the fault really happened
        assert all(body["code"] == "TIMEOUT" for status, body in answers if status == 504)

        assert gateway.clients.open_circuits() == []
        listed = await http.get("/api/v1/products")
        assert listed.status == 200, await listed.text()
        readyz = await http.get("/readyz")
        assert readyz.status == 200, await readyz.text()
        assert (await readyz.json())["open_circuits"] == []

        buyer = gateway.auth("alice")
        order = await http.post(
            "/api/v1/orders",
            json={"items": [{"product_id": product_id, "quantity": 2}]},
            headers={**buyer, "Idempotency-Key": "chaos-deadlines-1"},
        )
        assert order.status == 201, await order.text()
        paid = await http.post(
            f"/api/v1/orders/{(await order.json())['id']}/payment",
            json={"payment_method": {"type": "card", "token": "tok_visa"}},
            headers={**buyer, "Idempotency-Key": "chaos-deadlines-pay-1"},
        )
        assert paid.status == 200, await paid.text()
        assert gateway.clients.open_circuits() == []

    await check_stock(storage, before)
