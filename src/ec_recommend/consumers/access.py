"""Who may read the subscribers' read models over gRPC."""

from __future__ import annotations

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
