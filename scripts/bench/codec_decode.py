"""CPU per decode of the hot RPC messages through the codec's ``decode``.

Run it against two worktrees alternately (PYTHONPATH=<worktree>/src) to
compare decoders; betterproto2's own ``parse`` is printed for reference.

    .venv/bin/python scripts/bench/codec_decode.py [--rounds 5] [--seconds 0.4]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from cpu_timing import cpu_per_call

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.rpc.codec import decode

NOW = datetime(2026, 12, 1, 11, 0, 0, 123456, tzinfo=UTC)


def product(n: int) -> pb_product.Product:
    return pb_product.Product(
        id=f"prod-{n:08d}-4c1e-9a7b-2f3d5e6a7b8c",
        seller_id="seller-0000-4c1e-9a7b-2f3d5e6a7b8c",
        name=f"ワイヤレスイヤホン model {n}",
        description="Noise cancelling wireless earphones with a 30 hour battery. " * 3,
        base_price=pb_common.Money(amount=19800, currency="JPY"),
        sale_price=pb_common.Money(amount=17800, currency="JPY"),
        stock_quantity=1000 + n,
        status="active",
        images=[
            pb_product.ProductImage(url=f"https://img.example/{n}/{i}.jpg", alt_text="front")
            for i in range(2)
        ],
        created_at=NOW - timedelta(days=30),
        updated_at=NOW,
    )


def order() -> pb_order.Order:
    items = [
        pb_order.OrderItem(
            product_id=f"prod-{i:08d}-4c1e-9a7b-2f3d5e6a7b8c",
            seller_id="seller-0000-4c1e-9a7b-2f3d5e6a7b8c",
            name=f"ワイヤレスイヤホン model {i}",
            quantity=2,
            unit_price=pb_common.Money(amount=19800, currency="JPY"),
            line_total=pb_common.Money(amount=39600, currency="JPY"),
        )
        for i in range(3)
    ]
    return pb_order.Order(
        id="order-0000-4c1e-9a7b-2f3d5e6a7b8c",
        order_number="EC-20261201-000123",
        user_id="user-0000-4c1e-9a7b-2f3d5e6a7b8c",
        items=items,
        total_amount=pb_common.Money(amount=118800, currency="JPY"),
        status="pending",
        created_at=NOW,
        updated_at=NOW,
        payment_id="pay-0000-4c1e-9a7b-2f3d5e6a7b8c",
    )


def reserve_stock() -> pb_product.ReserveStockResponse:
    return pb_product.ReserveStockResponse(
        reservation_id="resv-0000-4c1e-9a7b-2f3d5e6a7b8c",
        state="reserved",
        stock=[
            pb_product.StockResponse(
                product_id=f"prod-{i:08d}", available_stock=998, reserved_stock=2
            )
            for i in range(3)
        ],
        expires_at=NOW + timedelta(minutes=15),
    )


MESSAGES: dict[str, Any] = {
    "Product": product(1),
    "Order": order(),
    "ReserveStockResponse": reserve_stock(),
    "GetProductsResponse(10)": pb_product.GetProductsResponse(
        products=[product(n) for n in range(10)]
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4)
    args = parser.parse_args()
    for name, message in MESSAGES.items():
        data, kind = bytes(message), type(message)
        assert decode(data, kind) == kind.parse(data)
        ours = partial(decode, data, kind)
        theirs = partial(kind.parse, data)
        fast = min(cpu_per_call(ours, args.seconds) for _ in range(args.rounds))
        slow = min(cpu_per_call(theirs, args.seconds) for _ in range(2))
        print(f"{name:24} {len(data):5d} B  decode {fast:7.1f} µs  (betterproto2 {slow:7.1f} µs)")


if __name__ == "__main__":
    main()
