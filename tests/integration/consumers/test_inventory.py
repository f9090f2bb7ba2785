"""Inventory subscriber against the real product service, both engines."""

from __future__ import annotations

import uuid

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Config
from ec_recommend.consumers import inventory
from ec_recommend.platform.errors import FailedPrecondition, NotFound
from ec_recommend.platform.storage import open_database
from tests.conftest import ServicesFactory
from tests.integration.consumers.conftest import apply, event, order

pytestmark = pytest.mark.asyncio


async def _product(stub: pb.ProductServiceStub, stock: int) -> str:
    product = await stub.create_product(
        pb.CreateProductRequest(
            seller_id="seller-1",
            name="茶碗",
            description="",
            base_price=pb_common.Money(amount=1200, currency="JPY"),
            stock_quantity=stock,
        )
    )
    return product.id


async def test_cancel_restocks_a_paid_order_once(config: Config, services: ServicesFactory) -> None:
    """The order service commits a paid order's stock; a cancellation gives it back, once."""
    async with (
        services("product") as hosted,
        open_database(config.storage, "inventory", inventory.MIGRATIONS) as db,
    ):
        products = hosted.clients.stub(pb.ProductServiceStub, "product")
        handlers = inventory.Inventory(products).handlers()
        assert "order.paid" not in handlers  # the order service commits, not this consumer
        product_id = await _product(products, 5)
        placed = order([(product_id, "seller-1", 2, 1200)], paid=True)
        await products.reserve_stock(
            pb.ReserveStockRequest(
                reservation_id=placed.id, lines=[pb.StockLine(product_id=product_id, quantity=2)]
            )
        )
        await products.commit_stock(pb.ReservationRequest(reservation_id=placed.id))
        stock = await products.get_stock(pb.GetProductRequest(product_id=product_id))
        assert (stock.available_stock, stock.reserved_stock) == (3, 0)

        cancelled = event(
            "order.cancelled", pb_events.OrderCancelled(order=placed, reason="x", refunded=True)
        )
        await apply(db, handlers["order.cancelled"], cancelled)
        await apply(db, handlers["order.cancelled"], cancelled)  # effect re-run: no change
        stock = await products.get_stock(pb.GetProductRequest(product_id=product_id))
        assert (stock.available_stock, stock.reserved_stock) == (5, 0)


async def test_cancel_releases_a_held_reservation(
    config: Config, services: ServicesFactory
) -> None:
    async with (
        services("product") as hosted,
        open_database(config.storage, "inventory", inventory.MIGRATIONS) as db,
    ):
        products = hosted.clients.stub(pb.ProductServiceStub, "product")
        handlers = inventory.Inventory(products).handlers()
        product_id = await _product(products, 1)
        placed = order([(product_id, "seller-1", 1, 1200)])
        await products.reserve_stock(
            pb.ReserveStockRequest(
                reservation_id=placed.id, lines=[pb.StockLine(product_id=product_id, quantity=1)]
            )
        )
        cancelled = event("order.cancelled", pb_events.OrderCancelled(order=placed))
        await apply(db, handlers["order.cancelled"], cancelled)
        stock = await products.get_stock(pb.GetProductRequest(product_id=product_id))
        assert (stock.available_stock, stock.reserved_stock) == (1, 0)
        with pytest.raises(FailedPrecondition):  # released, so it can no longer be committed
            await products.commit_stock(pb.ReservationRequest(reservation_id=placed.id))


async def test_cancel_of_an_unknown_reservation_is_retried(
    config: Config, services: ServicesFactory
) -> None:
    """No reservation means the order and the stock disagree: fail so it dead-letters."""
    async with (
        services("product") as hosted,
        open_database(config.storage, "inventory", inventory.MIGRATIONS) as db,
    ):
        handlers = inventory.Inventory(hosted.clients.stub(pb.ProductServiceStub, "product"))
        placed = order([(str(uuid.uuid4()), "seller-1", 1, 100)], paid=True)
        cancelled = event("order.cancelled", pb_events.OrderCancelled(order=placed))
        with pytest.raises(NotFound):
            await apply(db, handlers.handlers()["order.cancelled"], cancelled)
