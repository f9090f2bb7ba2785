"""Who the caller is, as read from a verified token (the seed's AuthContext)."""

from __future__ import annotations

from dataclasses import dataclass

CUSTOMER = "customer"
SELLER = "seller"
ADMIN = "admin"
GROUPS: tuple[str, ...] = (CUSTOMER, SELLER, ADMIN)

# The seed's ``getPermissions(groups)`` is not kept: what a group may do is
# decided in one place, by each service, from the caller's role and
# ownership (e.g. ``services/product/service.py``: an owning seller or an
# admin changes a product). A second table of permissions would be a second
# source of truth that nothing consults.


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

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def is_seller(self) -> bool:
        return SELLER in self.roles
