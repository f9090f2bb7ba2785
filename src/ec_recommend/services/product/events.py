"""Product events, recorded in the outbox inside the unit of work that changes
the product (ARCHITECTURE section 5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.platform.events.outbox import record_event
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.services.product import domain

SOURCE = "product-service"

# Store columns as the field names consumers know from product.proto.
FIELD_NAMES = {
    "base_price": "base_price",
    "currency": "base_price",
    "sale_price": "sale_price",
    "available": "stock_quantity",
}


def _snapshot_fields(product: domain.Product) -> dict[str, Any]:
    """What product.created and product.updated both carry: the product as it now is."""
    return {
        "product_id": product.id,
        "seller_id": product.seller_id,
        "name": product.name,
        "description": product.description,
        "base_price": product.base_price.to_pb(),
        "sale_price": None if product.sale_price is None else product.sale_price.to_pb(),
        "stock_quantity": product.available,
        "status": product.status,
    }


async def product_created(uow: UnitOfWork, product: domain.Product) -> None:
    data = pb.ProductCreated(**_snapshot_fields(product))
    await record_event(uow, "product.created", data, source=SOURCE)


async def product_updated(uow: UnitOfWork, product: domain.Product, changed: Sequence[str]) -> None:
    fields = list(dict.fromkeys(FIELD_NAMES.get(name, name) for name in changed))
    data = pb.ProductUpdated(**_snapshot_fields(product), changed_fields=fields)
    await record_event(uow, "product.updated", data, source=SOURCE)


async def product_out_of_stock(uow: UnitOfWork, product: domain.Product) -> None:
    data = pb.ProductOutOfStock(product_id=product.id, seller_id=product.seller_id)
    await record_event(uow, "product.out_of_stock", data, source=SOURCE)


async def review_created(
    uow: UnitOfWork, *, review_id: str, product_id: str, user_id: str, rating: int
) -> None:
    data = pb.ReviewCreated(
        review_id=review_id, product_id=product_id, user_id=user_id, rating=rating
    )
    await record_event(uow, "review.created", data, source=SOURCE)
