"""Helpers for commerce tests: acting as a user, stocking products, reading stock."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ec_recommend._gen.ecommerce import cart as pb_cart
from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.config import Config
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope
from ec_recommend.platform.rpc.mesh import DEFAULT_MESH_FILE
from ec_recommend.runtime.host import HostedServices


@contextmanager
def acting_as(
    user_id: str, *, seller_id: str = "", admin: bool = False, key: str = ""
) -> Iterator[None]:
    """Calls made inside carry this end user's identity (as the gateway sends it)."""
    roles = {"customer"}
    if seller_id:
        roles.add("seller")
    if admin:
        roles.add("admin")
    identity = Identity(user_id=user_id, roles=frozenset(roles), seller_id=seller_id)
    with call_scope(CallContext(identity=identity, idempotency_key=key)):
        yield


def patient(config: Config, directory: Path, seconds: int = 60) -> Config:
    """``config`` with every mesh timeout raised to ``seconds``.

    For bursts that check correctness under contention (no overselling), not
    latency: on a busy shared CI machine a 200-request burst can outlast the
    production per-call timeouts, and a timeout would hide what is tested.
    """

    def relax(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: f"{seconds}s" if k in ("timeout", "retry_timeout") else relax(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [relax(v) for v in node]
        return node

    mesh = relax(yaml.safe_load(DEFAULT_MESH_FILE.read_text(encoding="utf-8")))
    path = directory / "patient-mesh.yaml"
    path.write_text(yaml.safe_dump(mesh), encoding="utf-8")
    return dataclasses.replace(config, mesh_file=path)


def new_user() -> str:
    return str(uuid.uuid4())


@dataclass
class Shop:
    hosted: HostedServices

    @property
    def products(self) -> pb_product.ProductServiceStub:
        return self.hosted.clients.stub(pb_product.ProductServiceStub, "product")

    @property
    def orders(self) -> pb_order.OrderServiceStub:
        return self.hosted.clients.stub(pb_order.OrderServiceStub, "order")

    @property
    def carts(self) -> pb_cart.CartServiceStub:
        return self.hosted.clients.stub(pb_cart.CartServiceStub, "cart")

    async def product(
        self, *, stock: int = 10, price: int = 1000, seller_id: str = "seller-1", name: str = "Tea"
    ) -> pb_product.Product:
        return await self.products.create_product(
            pb_product.CreateProductRequest(
                seller_id=seller_id,
                name=name,
                description="",
                base_price=pb_common.Money(amount=price, currency="JPY"),
                stock_quantity=stock,
            )
        )

    async def stock(self, product_id: str) -> tuple[int, int]:
        """(available, reserved) of a product, asked as an internal caller."""
        with call_scope(CallContext()):
            stock = await self.products.get_stock(
                pb_product.GetProductRequest(product_id=product_id)
            )
        return stock.available_stock, stock.reserved_stock

    async def order(self, *lines: tuple[str, int]) -> pb_order.Order:
        return await self.orders.create_order(
            pb_order.CreateOrderRequest(
                items=[pb_order.OrderLine(product_id=p, quantity=q) for p, q in lines]
            )
        )

    async def pay(self, order_id: str, token: str = "tok_visa") -> pb_order.PaymentResponse:
        return await self.orders.process_payment(
            pb_order.ProcessPaymentRequest(
                order_id=order_id, payment_method=pb_order.PaymentMethod(type="card", token=token)
            )
        )

    async def get(self, order_id: str) -> pb_order.Order:
        return await self.orders.get_order(pb_order.GetOrderRequest(order_id=order_id))

    async def set_status(self, order_id: str, status: str) -> pb_order.Order:
        return await self.orders.update_order_status(
            pb_order.UpdateOrderStatusRequest(order_id=order_id, status=status)
        )
