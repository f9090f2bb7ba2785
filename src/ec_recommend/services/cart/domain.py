"""Cart rules with no I/O: limits, whose cart a call may touch, what may be added."""

from __future__ import annotations

from collections.abc import Callable

from ec_recommend.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from ec_recommend.platform.ids import require_id
from ec_recommend.platform.rpc.context import Identity

MAX_LINES = 100
MAX_QUANTITY = 999  # per line
ARCHIVED = "archived"

# Vets the quantity a cart line would end with; raises to refuse it.
QuantityCheck = Callable[[int], None]


def validate_quantity(quantity: int, *, allow_zero: bool) -> int:
    if quantity < 0 or (quantity == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidArgument(f"quantity must be {bound}", field="quantity")
    if quantity > MAX_QUANTITY:
        raise InvalidArgument(f"quantity must be at most {MAX_QUANTITY}", field="quantity")
    return quantity


def cart_owner(identity: Identity | None, requested_user_id: str) -> str:
    """Whose cart this call works on.

    End users work on their own cart (another user's is NOT_FOUND, so carts
    cannot be probed); admins and internal callers name the user.
    """
    if identity is None:
        return require_id(requested_user_id, "user_id")
    if requested_user_id and requested_user_id != identity.user_id:
        if identity.is_admin:
            return require_id(requested_user_id, "user_id")
        raise NotFound("cart not found", user_id=requested_user_id)
    return identity.user_id


def check_addable(product_id: str, *, status: str | None, available: int, wanted: int) -> None:
    """Refuse a cart quantity the product cannot supply now.

    ``status`` is None when the product does not exist.
    """
    if status is None:
        raise NotFound(f"product {product_id} not found", product_id=product_id)
    if status == ARCHIVED:
        raise FailedPrecondition(
            f"product {product_id} is no longer sold",
            product_id=product_id,
            reason="product_archived",
        )
    if wanted > available:
        raise FailedPrecondition(
            f"only {available} of product {product_id} available, {wanted} requested",
            product_id=product_id,
            reason="insufficient_stock",
            available=str(available),
            requested=str(wanted),
        )
