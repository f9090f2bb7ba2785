"""Who the caller is, as read from a verified token (the seed's AuthContext)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CUSTOMER = "customer"
SELLER = "seller"
ADMIN = "admin"
GROUPS: tuple[str, ...] = (CUSTOMER, SELLER, ADMIN)

# Permissions granted by each Cognito group. The seed names ``getPermissions``
# without defining it; these are the actions the REST contract distinguishes.
GROUP_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    CUSTOMER: (
        "profile:read",
        "profile:write",
        "cart:write",
        "orders:read:own",
        "orders:write:own",
        "reviews:write",
    ),
    SELLER: (
        "profile:read",
        "profile:write",
        "products:write:own",
        "stock:write:own",
        "orders:read:seller",
        "orders:ship:seller",
    ),
    ADMIN: (
        "profile:read",
        "profile:write",
        "users:read:any",
        "products:write:any",
        "stock:write:any",
        "orders:read:any",
        "orders:ship:any",
    ),
}


def permissions_for(groups: Iterable[str]) -> tuple[str, ...]:
    """The sorted union of the permissions of ``groups``; unknown groups grant nothing."""
    granted: set[str] = set()
    for group in groups:
        granted.update(GROUP_PERMISSIONS.get(group, ()))
    return tuple(sorted(granted))


@dataclass(frozen=True)
class AuthContext:
    """A verified caller. ``email``/``seller_id`` are empty for access tokens.

    Access tokens carry neither claim; the gateway resolves them through
    UserService.
    """

    user_id: str  # Cognito ``sub``
    email: str
    roles: tuple[str, ...]
    seller_id: str | None
    permissions: tuple[str, ...]

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def is_seller(self) -> bool:
        return SELLER in self.roles
