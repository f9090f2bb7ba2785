"""A ProductService whose behaviour each test scripts: fail N times, hang, any status."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Endpoint
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.mesh import (
    BreakerPolicy,
    MeshConfig,
    OutlierPolicy,
    RetryBudget,
    RetryPolicy,
    ServicePolicy,
)
from ec_recommend.platform.rpc.server import RpcServer


@dataclass
class Script:
    """What the next calls of one method do, in order; then succeed."""

    failures: list[errors.ServiceError | None] = field(default_factory=list)  # None = hang
    always: errors.ServiceError | None = None
    hang_forever: bool = False


class FaultyProducts(pb.ProductServiceBase):
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = defaultdict(Script)
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.cancelled: dict[str, int] = defaultdict(int)
        self.gate: asyncio.Event | None = None  # when set, calls wait on it

    def total(self) -> int:
        return sum(len(times) for times in self.calls.values())

    async def _behave(self, method: str) -> None:
        self.calls[method].append(time.monotonic())
        script = self.scripts[method]
        try:
            if self.gate is not None:
                await self.gate.wait()
            if script.hang_forever:
                await asyncio.Event().wait()
            if script.failures:
                failure = script.failures.pop(0)
                if failure is None:
                    await asyncio.Event().wait()
                raise failure
            if script.always is not None:
                raise script.always
        except asyncio.CancelledError:
            self.cancelled[method] += 1
            raise

    async def get_product(self, message: pb.GetProductRequest) -> pb.Product:
        await self._behave("GetProduct")
        return pb.Product(id=message.product_id, name="ok")

    async def create_product(self, message: pb.CreateProductRequest) -> pb.Product:
        await self._behave("CreateProduct")
        return pb.Product(id="new", name=message.name)

    async def reserve_stock(self, message: pb.ReserveStockRequest) -> pb.ReserveStockResponse:
        await self._behave("ReserveStock")
        return pb.ReserveStockResponse(reservation_id=message.reservation_id)


def mesh(retry: dict[str, Any] | None = None, **fields: Any) -> MeshConfig:
    """Product policies with short, test-sized timings; override any field."""
    policy = ServicePolicy(
        name="product",
        timeout=5.0,
        retry=RetryPolicy(
            max_retries=3,
            retry_on=frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL"}),
            retry_timeout=2.0,
            initial_delay=0.01,
            max_delay=0.05,
            multiplier=2.0,
            jitter=0.0,
        ),
        budget=RetryBudget(ratio=1.0, reserve=1000),
        breaker=BreakerPolicy(threshold=1000, timeout=30.0),
        outlier=OutlierPolicy(consecutive_failures=2, ejection_time=0.2, probe_timeout=0.5),
        idempotent_methods=frozenset({"GetProduct", "ReserveStock"}),
    )
    policy = replace(policy, retry=replace(policy.retry, **(retry or {})), **fields)
    return MeshConfig(services={"product": policy})


@asynccontextmanager
async def faulty_product(
    policy_mesh: MeshConfig, service: FaultyProducts | None = None
) -> AsyncIterator[tuple[FaultyProducts, pb.ProductServiceStub, ClientFactory]]:
    service = service or FaultyProducts()
    async with (
        RpcServer("product", [service]) as server,
        ClientFactory(
            {"product": [Endpoint("127.0.0.1", server.port)]}, pool_size=1, mesh=policy_mesh
        ) as clients,
    ):
        yield service, clients.stub(pb.ProductServiceStub, "product"), clients
