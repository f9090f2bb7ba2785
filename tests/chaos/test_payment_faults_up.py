"""Payments against a running ``ec-recommend up``: short client deadlines
through the gateway, and kill -9 with payments in flight, then a restart on
the same data directory. Every attempt ends; paying again never times out."""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from ec_recommend.client import Client
from ec_recommend.config import StorageConfig
from ec_recommend.platform.rpc.mesh import DEFAULT_MESH_FILE
from tests.chaos import invariants
from tests.chaos.running_up import UpProcess, running_up
from tests.conftest import POSTGRES_URL, _drop_schemas, require_service, wait_for

pytestmark = [pytest.mark.asyncio, pytest.mark.chaos]

RESOLVE_AFTER = 2.0
SANDBOX_LATENCY = 0.3
SETTINGS = {
    "EC_PAYMENT_CALL_TIMEOUT": "1",
    "EC_PAYMENT_RESOLVE_AFTER": str(RESOLVE_AFTER),
    # Each charge takes a processor's time, so payments are in flight when
    # the process is killed (an instant sandbox would finish them first).
    "EC_SANDBOX_PAYMENT_LATENCY": str(SANDBOX_LATENCY),
    "EC_ORDER_SWEEP_INTERVAL": "0.5",
    "EC_TRUSTED_PROXIES": "127.0.0.1",
    "EC_LOG_LEVEL": "WARNING",
}


UP = [sys.executable, "-m", "ec_recommend.cli", "up", "--port", "0"]


def _mesh_without_breakers(directory: Path) -> Path:
    """The default mesh with circuit breakers and ejection out of reach.

    What is under test here is the payment attempt, not the breaker: a
    caller's own short deadline opening a circuit is a separate fault.
    """

    def relax(node: Any) -> Any:
        if isinstance(node, dict):
            if "threshold" in node:
                return {**node, "threshold": 100_000, "timeout": "1s"}
            if "consecutive_failures" in node:
                return {**node, "consecutive_failures": 100_000}
            return {key: relax(value) for key, value in node.items()}
        if isinstance(node, list):
            return [relax(value) for value in node]
        return node

    path = directory / "mesh.yaml"
    mesh = yaml.safe_load(DEFAULT_MESH_FILE.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(relax(mesh)), encoding="utf-8")
    return path


@pytest.fixture
def up(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UpProcess]:
    """``up`` on SQLite, or on PostgreSQL (its own schemas) when parametrized so."""
    engine = getattr(request, "param", "sqlite")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**SETTINGS, "EC_MESH_FILE": str(_mesh_without_breakers(data_dir))}
    prefix = ""
    if engine == "postgres":
        require_service(POSTGRES_URL, 5432, "PostgreSQL")
        prefix = f"t{uuid.uuid4().hex[:10]}_"
        env |= {"EC_DATABASE_URL": POSTGRES_URL, "EC_SCHEMA_PREFIX": prefix}
    try:
        with running_up(data_dir, env) as system:
            yield system
    finally:
        if prefix:
            asyncio.run(_drop_schemas(prefix))


async def _demo(up: UpProcess, email: str) -> Client:
    client = Client(up.gateway_url, headers={"X-Forwarded-For": f"10.16.0.{len(email)}"})
    await client.login(email, str(up.endpoints.get("demo_password", "Demo-password-1")))
    return client


async def _shop(up: UpProcess, orders: int) -> tuple[Client, list[str]]:
    async with await _demo(up, "seller@example.com") as seller:
        product = await seller.create_product("Chaos tea", 1200, stock_quantity=orders)
    customer = await _demo(up, "customer@example.com")
    ids = [str((await customer.create_order([(product["id"], 1)]))["id"]) for _ in range(orders)]
    return customer, ids


async def _pay(customer: Client, order_id: str, headers: dict[str, str] | None = None) -> int:
    response = await customer.request(
        "POST",
        f"/api/v1/orders/{order_id}/payment",
        json={"payment_method": {"type": "card", "token": "tok_visa"}},
        headers=headers,
        check=False,
    )
    return response.status


async def _all_end(storage: StorageConfig, customer: Client, order_ids: list[str]) -> None:
    """Paying again pays every order, no payment stays PROCESSING, the money and
    stock invariants hold."""

    unpaid = list(order_ids)

    async def paid_again() -> bool:
        statuses = {order_id: await _pay(customer, order_id) for order_id in unpaid}
        assert 504 not in statuses.values(), statuses
        unpaid[:] = [order_id for order_id, status in statuses.items() if status != 200]
        return not unpaid

    # Each order paid afresh waits out the processor's latency, so one pass
    # over 40 takes 12 s or more; an attempt from before a crash is resolved
    # RESOLVE_AFTER after it began, and its order answers 409 until then.
    # A paid order stays paid: later passes ask only the others again.
    await wait_for(
        paid_again, interval=0.1, timeout=6 * RESOLVE_AFTER + len(order_ids) * SANDBOX_LATENCY
    )
    assert await invariants.payments_in_flight(storage, timedelta(seconds=RESOLVE_AFTER)) == []
    assert await invariants.payment_problems(storage) == []

    async def stock_holds() -> bool:
        try:
            await invariants.check_stock(storage, {})
        except AssertionError:
            return False
        return True

    await wait_for(stock_holds, interval=0.1, timeout=20)


async def test_short_deadlines_through_the_gateway_leave_nothing_processing(up: UpProcess) -> None:
    customer, order_ids = await _shop(up, 60)
    rng = random.Random(16)
    async with customer:
        deadlines = [f"{rng.uniform(0.005, 0.15):.3f}" for _ in order_ids]
        await asyncio.gather(
            *(
                _pay(customer, order_id, {"X-Request-Timeout": timeout})
                for order_id, timeout in zip(order_ids, deadlines, strict=True)
            )
        )
        await _all_end(up.storage, customer, order_ids)


@pytest.mark.parametrize("up", ["sqlite", "postgres"], indirect=True)
async def test_kill_9_with_payments_in_flight_then_restart_ends_every_attempt(
    up: UpProcess,
) -> None:
    storage = up.storage
    customer, order_ids = await _shop(up, 40)
    async with customer:
        paying = [asyncio.create_task(_pay(customer, order_id)) for order_id in order_ids]

        async def one_in_flight() -> bool:
            return bool(await invariants.payments_in_flight(storage, timedelta(0)))

        await wait_for(one_in_flight, interval=0.1, timeout=30)
        up.kill9()
        await asyncio.gather(*paying, return_exceptions=True)
    in_flight = await invariants.payments_in_flight(storage, timedelta(0))
    print(f"payments PROCESSING at the crash: {len(in_flight)}")

    up.start()
    async with await _demo(up, "customer@example.com") as customer:
        await _all_end(storage, customer, order_ids)
