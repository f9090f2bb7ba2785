"""A write whose outcome is unknown, against ``ec-recommend up``.

The first try of an order runs out of its client's budget (504, outcome
unknown); the Python client sends it again with the same Idempotency-Key and
the buyer ends up with exactly one order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from ec_recommend.client import Client, Response
from tests.e2e.conftest import PASSWORD, System, fresh_address

pytestmark = pytest.mark.asyncio


@dataclass
class FirstTryCutShort(Client):
    """Gives its first order create 1 ms (a 504 for sure); later tries the default."""

    answers: list[Response] = field(default_factory=list)

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        if (method, path) == ("POST", "/api/v1/orders"):
            if not self.answers:
                kwargs["headers"] = {**(kwargs.get("headers") or {}), "X-Request-Timeout": "0.001"}
            try:
                return await super().request(method, path, **kwargs)
            finally:
                assert self.last is not None
                self.answers.append(self.last)
        return await super().request(method, path, **kwargs)


async def test_the_client_repeats_a_timed_out_create_with_its_key_and_gets_one_order(
    system: System,
) -> None:
    seller = await system.seller()
    product = await seller.create_product(f"Kettle {uuid.uuid4().hex[:8]}", 3000, 5)
    buyer = FirstTryCutShort(system.gateway_url, headers={"X-Forwarded-For": fresh_address()})
    system.clients.append(buyer)
    email = f"buyer-{uuid.uuid4().hex[:12]}@example.com"
    await buyer.signup(email, PASSWORD, role="customer")
    await buyer.login(email, PASSWORD)

    order = await buyer.create_order([(product["id"], 2)])

    first, *rest = buyer.answers
    assert first.status == 504
    assert first.body["code"] == "TIMEOUT"
    assert first.body["details"] == {"outcome": "unknown", "safe_to_retry": "true"}
    assert [answer.status for answer in rest][-1] == 201
    mine = await buyer.list_orders()
    assert [o["id"] for o in mine.items] == [order["id"]]
    stock = await seller.get_stock(product["id"])
    assert (stock["available_stock"], stock["reserved_stock"]) == (3, 2)


async def test_readyz_lists_open_circuits_as_information(system: System) -> None:
    response = await system.anonymous().request("GET", "/readyz")
    assert response.status == 200
    assert response.body["status"] == "ready"
    assert response.body["open_circuits"] == []
    assert "order" in response.body["services"]
