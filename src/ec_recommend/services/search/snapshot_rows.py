"""A ProductSnapshot as a table row and back.

The search index and the recommendation catalogue both store full product
snapshots with the same columns (each adds its own derived ones).
"""

from __future__ import annotations

from typing import Any

from ec_recommend.platform.clock import aware
from ec_recommend.services.search.domain import Image, ProductSnapshot


def snapshot_values(snapshot: ProductSnapshot) -> dict[str, Any]:
    """The shared columns of a stored snapshot."""
    return {
        "product_id": snapshot.id,
        "seller_id": snapshot.seller_id,
        "name": snapshot.name,
        "description": snapshot.description,
        "currency": snapshot.currency,
        "base_price": snapshot.base_price,
        "sale_price": snapshot.sale_price,
        "stock": snapshot.stock,
        "status": snapshot.status,
        "images": [{"url": i.url, "alt_text": i.alt_text} for i in snapshot.images],
        "created_at": snapshot.created_at,
        "updated_at": snapshot.updated_at,
    }


def snapshot_from_row(row: Any) -> ProductSnapshot:
    return ProductSnapshot(
        id=row.product_id,
        seller_id=row.seller_id,
        name=row.name,
        description=row.description,
        currency=row.currency,
        base_price=row.base_price,
        sale_price=row.sale_price,
        stock=row.stock,
        status=row.status,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        images=tuple(Image(i["url"], i.get("alt_text", "")) for i in row.images),
    )
