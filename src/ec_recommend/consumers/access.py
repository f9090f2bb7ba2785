"""Who may read the subscribers' read models over gRPC."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.errors import PermissionDenied
from ec_recommend.platform.rpc.context import current_call


def require_admin_or_internal() -> None:
    """Internal callers carry no end-user identity; end users must be admins."""
    identity = current_call().identity
    if identity is not None and not identity.is_admin:
        raise PermissionDenied("analytics are visible to administrators only")


def require_seller_access(seller_id: str) -> None:
    """A seller reads only its own ledger; admins and internal callers read any."""
    identity = current_call().identity
    if identity is None or identity.is_admin:
        return
    if not identity.is_seller or identity.seller_id != seller_id:
        raise PermissionDenied("a seller may read only its own ledger", seller_id=seller_id)


async def require_product_stats_access(
    product_ids: Sequence[str], products: Callable[[], pb_product.ProductServiceStub]
) -> None:
    """Admins and internal callers read any product's stats; a seller only its own
    products' (asked of ProductService, which owns who sells what)."""
    identity = current_call().identity
    if identity is None or identity.is_admin:
        return
    if not identity.is_seller:
        raise PermissionDenied("product analytics are visible to their seller and administrators")
    found = await products().get_products(
        pb_product.GetProductsRequest(product_ids=list(product_ids))
    )
    owned = {p.id for p in found.products if p.seller_id == identity.seller_id}
    foreign = next((pid for pid in product_ids if pid not in owned), None)
    if foreign is not None:
        raise PermissionDenied(
            "a seller may read only its own products' analytics", product_id=foreign
        )
