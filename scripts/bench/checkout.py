#!/usr/bin/env python
"""Checkout benchmarks, each against its baseline in the same run.

1. DataLoader (seed 10.2): pricing a cart of ``--items`` products, as the
   cart and order services do, three ways against one real ProductService
   (gRPC, SQLite):
     sequential   one GetProduct after another (the naive loop)
     concurrent   one GetProduct per item, all at once (asyncio.gather)
     dataloader   loader.load() per item, all at once: one GetProducts call
   Prints cart pricings/s of each and the speed-up of the DataLoader.
Usage: python scripts/bench/checkout.py [--items 20] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(bench_dataloader(args.items, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
