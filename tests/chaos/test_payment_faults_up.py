"""Payments against a running ``ec-recommend up``: short client deadlines
through the gateway, and kill -9 with payments in flight, then a restart on
the same data directory. Every attempt ends; paying again never times out."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from ec_recommend.client import Client
from ec_recommend.config import StorageConfig
from ec_recommend.platform.rpc.mesh import DEFAULT_MESH_FILE
from tests.chaos import invariants
from tests.conftest import POSTGRES_URL, _drop_schemas, require_service

pytestmark = [pytest.mark.asyncio, pytest.mark.chaos]

RESOLVE_AFTER = 2.0
SETTINGS = {
    "EC_PAYMENT_CALL_TIMEOUT": "1",
    "EC_PAYMENT_RESOLVE_AFTER": str(RESOLVE_AFTER),
    "EC_ORDER_SWEEP_INTERVAL": "0.5",
    "EC_TRUSTED_PROXIES": "127.0.0.1",
    "EC_LOG_LEVEL": "WARNING",
}


UP = [sys.executable, "-m", "ec_recommend.cli", "up", "--port", "0"]


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


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


@dataclass
class Up:
    """One ``ec-recommend up`` on ``storage``, which it keeps across restarts."""

    storage: StorageConfig
    process: subprocess.Popen[bytes] | None = None
    children: list[int] = field(default_factory=list)
    endpoints: dict[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.storage.data_dir

    def start(self) -> None:
        database = {}
        if self.storage.database_url:
            database = {
                "EC_DATABASE_URL": self.storage.database_url,
                "EC_SCHEMA_PREFIX": self.storage.schema_prefix,
            }
        (self.data_dir / "endpoints.json").unlink(missing_ok=True)
        with (self.data_dir / "up.log").open("ab") as log:
            self.process = subprocess.Popen(
                [*UP, "--data-dir", str(self.data_dir)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=os.environ
                | SETTINGS
                | database
                | {"EC_MESH_FILE": str(_mesh_without_breakers(self.data_dir))},
            )
        deadline = time.monotonic() + 90
        endpoints = self.data_dir / "endpoints.json"
        while not self._ready(endpoints):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ec-recommend up did not start; see {self.data_dir / 'up.log'}")
            time.sleep(0.2)
        self.children = _descendants(self.process.pid)

    def _ready(self, endpoints: Path) -> bool:
        if not endpoints.exists():
            return False
        self.endpoints = json.loads(endpoints.read_text(encoding="utf-8"))
        try:
            with urllib.request.urlopen(f"{self.gateway_url}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    @property
    def gateway_url(self) -> str:
        return str(self.endpoints["gateway_url"])

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._end_children()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._end_children()

    def _end_children(self) -> None:
        # The local broker (moto) would outlive a killed parent; it is ours to end.
        for pid in self.children:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.children = []


@pytest.fixture
def up(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Up]:
    """``up`` on SQLite, or on PostgreSQL (its own schemas) when parametrized so."""
    engine = getattr(request, "param", "sqlite")
    storage = StorageConfig(data_dir=tmp_path / "data")
    if engine == "postgres":
        require_service(POSTGRES_URL, 5432, "PostgreSQL")
        storage = StorageConfig(
            data_dir=storage.data_dir,
            database_url=POSTGRES_URL,
            schema_prefix=f"t{uuid.uuid4().hex[:10]}_",
        )
    system = Up(storage)
    storage.data_dir.mkdir()
    system.start()
    try:
        yield system
    finally:
        system.stop()
        if storage.database_url:
            asyncio.run(_drop_schemas(storage.schema_prefix))


async def _demo(up: Up, email: str) -> Client:
    client = Client(up.gateway_url, headers={"X-Forwarded-For": f"10.16.0.{len(email)}"})
    await client.login(email, str(up.endpoints.get("demo_password", "Demo-password-1")))
    return client


async def _shop(up: Up, orders: int) -> tuple[Client, list[str]]:
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


async def _until(predicate: Any, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def _all_end(storage: StorageConfig, customer: Client, order_ids: list[str]) -> None:
    """Paying again pays every order, no payment stays PROCESSING, the money and
    stock invariants hold."""

    async def paid_again() -> bool:
        statuses = [await _pay(customer, order_id) for order_id in order_ids]
        assert 504 not in statuses, statuses
        return set(statuses) == {200}

    await _until(paid_again, timeout=6 * RESOLVE_AFTER)
    assert await invariants.payments_in_flight(storage, timedelta(seconds=RESOLVE_AFTER)) == []
    assert await invariants.payment_problems(storage) == []

    async def stock_holds() -> bool:
        try:
            await invariants.check_stock(storage, {})
        except AssertionError:
            return False
        return True

    await _until(stock_holds, timeout=20)


async def test_short_deadlines_through_the_gateway_leave_nothing_processing(up: Up) -> None:
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
async def test_kill_9_with_payments_in_flight_then_restart_ends_every_attempt(up: Up) -> None:
    storage = up.storage
    customer, order_ids = await _shop(up, 40)
    async with customer:
        paying = [asyncio.create_task(_pay(customer, order_id)) for order_id in order_ids]

        async def one_in_flight() -> bool:
            return bool(await invariants.payments_in_flight(storage, timedelta(0)))

        await _until(one_in_flight, timeout=30)
        up.kill9()
        await asyncio.gather(*paying, return_exceptions=True)
    in_flight = await invariants.payments_in_flight(storage, timedelta(0))
    print(f"payments PROCESSING at the crash: {len(in_flight)}")

    up.start()
    async with await _demo(up, "customer@example.com") as customer:
        await _all_end(storage, customer, order_ids)
