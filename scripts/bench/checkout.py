#!/usr/bin/env python
"""Checkout benchmarks, each against its baseline in the same run.

1. DataLoader (seed 10.2): pricing a cart of ``--items`` products, as the
   cart and order services do, three ways against one real ProductService
   (gRPC, SQLite):
     sequential   one GetProduct after another (the naive loop)
     concurrent   one GetProduct per item, all at once (asyncio.gather)
     dataloader   loader.load() per item, all at once: one GetProducts call
   Prints cart pricings/s of each and the speed-up of the DataLoader.

2. Orders through the gateway (``--gateway``): ``ec-recommend up`` in a child
   process; ``--concurrency`` logged-in buyers each create an order and pay
   it with tok_visa, in a closed loop for ``--seconds``. Prints orders/s,
   p50/p99 latency of create+pay, and the CPU per order spent by ``up``'s
   own process and by its local broker (moto) over the run, read from /proc.
Usage: python scripts/bench/checkout.py [--items 20] [--rounds 200]
       [--gateway] [--concurrency 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.client import Client
from ec_recommend.config import Config, StorageConfig
from ec_recommend.platform.rpc.dataloader import product_loader
from ec_recommend.runtime.host import host_services


async def _timed(rounds: int, price_cart: Callable[[], Awaitable[object]]) -> float:
    """Cart pricings per second over ``rounds`` rounds (after one warm-up)."""
    await price_cart()
    started = time.perf_counter()
    for _ in range(rounds):
        await price_cart()
    return rounds / (time.perf_counter() - started)


async def bench_dataloader(items: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        config = Config(storage=StorageConfig(data_dir=Path(data_dir)))
        async with host_services(config, ["product"]) as hosted:
            stub = hosted.clients.stub(pb.ProductServiceStub, "product")
            ids = [
                (
                    await stub.create_product(
                        pb.CreateProductRequest(
                            seller_id="bench-seller",
                            name=f"商品 {n}",
                            description="bench",
                            base_price=pb_common.Money(amount=1000 + n, currency="JPY"),
                            stock_quantity=100,
                        )
                    )
                ).id
                for n in range(items)
            ]

            async def sequential() -> None:
                for pid in ids:
                    await stub.get_product(pb.GetProductRequest(product_id=pid))

            async def concurrent() -> None:
                await asyncio.gather(
                    *(stub.get_product(pb.GetProductRequest(product_id=pid)) for pid in ids)
                )

            async def dataloader() -> None:
                loader = product_loader(stub)  # a fresh one per "request", as in the services
                products = await loader.load_many(ids)
                assert all(p is not None for p in products)

            results = {
                "sequential": await _timed(rounds, sequential),
                "concurrent": await _timed(rounds, concurrent),
                "dataloader": await _timed(rounds, dataloader),
            }
    print(f"DataLoader: pricing a cart of {items} products, {rounds} rounds each")
    for name, rate in results.items():
        print(f"  {name:<11} {rate:9.1f} carts/s  {1000 / rate:7.2f} ms/cart")
    print(
        f"  speed-up    {results['dataloader'] / results['sequential']:.1f}x vs sequential, "
        f"{results['dataloader'] / results['concurrent']:.1f}x vs concurrent single lookups"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid(up_pid: int) -> int | None:
    """The local broker (moto) that ``up`` runs as its child."""
    for task in Path(f"/proc/{up_pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with suppress(OSError):
                if b"moto" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
    return None


@asynccontextmanager
async def running_system(data_dir: Path) -> AsyncIterator[tuple[str, int]]:
    """``ec-recommend up`` as a child process; yields the gateway URL and its pid."""
    env = dict(os.environ, EC_TRUSTED_PROXIES="127.0.0.1", EC_LOG_LEVEL="WARNING")
    with (data_dir / "up.log").open("wb") as log:
        child = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "ec_recommend.cli", "up", "--port", "0", "--no-demo"],
            *["--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
    try:
        endpoints = data_dir / "endpoints.json"
        deadline = time.monotonic() + 120
        url = ""
        while not url:
            if child.returncode is not None or time.monotonic() > deadline:
                raise SystemExit(f"ec-recommend up did not start; see {data_dir / 'up.log'}")
            if endpoints.exists():
                with suppress(ValueError, KeyError):
                    url = json.loads(endpoints.read_text(encoding="utf-8"))["gateway_url"]
            await asyncio.sleep(0.2)
        async with Client(url) as probe:
            while not await probe.ready():
                if time.monotonic() > deadline:
                    raise SystemExit("the gateway did not become ready")
                await asyncio.sleep(0.2)
        yield url, child.pid
    finally:
        child.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(child.wait(), 30)
        except TimeoutError:
            child.kill()
            await child.wait()


async def _account(url: str, role: str, n: int) -> Client:
    client = Client(url, headers={"X-Forwarded-For": f"10.9.{n // 256}.{n % 256}"})
    email = f"bench-{role}-{uuid.uuid4().hex[:10]}@example.com"
    await client.signup(email, "Passw0rd-bench", display_name=f"{role} {n}", role=role)
    await client.login(email, "Passw0rd-bench")
    return client


async def bench_gateway(concurrency: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        async with running_system(Path(data_dir)) as (url, up_pid):
            seller = await _account(url, "seller", 0)
            buyers = [await _account(url, "customer", n + 1) for n in range(concurrency)]
            product = await seller.create_product("Bench beans", 1200, 1_000_000)
            latencies: list[float] = []
            stop = time.perf_counter() + seconds

            async def buy(client: Client) -> None:
                while time.perf_counter() < stop:
                    started = time.perf_counter()
                    order = await client.create_order([(product["id"], 1)])
                    await client.pay(order["id"], "tok_visa")
                    latencies.append(time.perf_counter() - started)

            moto = broker_pid(up_pid)
            cpu_before = cpu_seconds(up_pid), cpu_seconds(moto) if moto else 0.0
            started = time.perf_counter()
            await asyncio.gather(*(buy(b) for b in buyers))
            elapsed = time.perf_counter() - started
            cpu_up = cpu_seconds(up_pid) - cpu_before[0]
            cpu_broker = (cpu_seconds(moto) - cpu_before[1]) if moto else 0.0
            for client in [seller, *buyers]:
                await client.close()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"Gateway: create + pay with {concurrency} concurrent buyers for {seconds:.0f}s")
    print(
        f"  {len(latencies) / elapsed:9.1f} orders/s  "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms  p99 {p99 * 1000:.0f} ms  "
        f"({len(latencies)} orders)"
    )
    orders = max(len(latencies), 1)
    print(
        f"  CPU per order: up {cpu_up / orders * 1000:.1f} ms, "
        f"local broker {cpu_broker / orders * 1000:.1f} ms "
        "(over the run; events still in flight at its end are not counted)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--gateway", action="store_true", help="also orders/s through HTTP")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(bench_dataloader(args.items, args.rounds))
    if args.gateway:
        asyncio.run(bench_gateway(args.concurrency, args.seconds))


if __name__ == "__main__":
    sys.exit(main())
