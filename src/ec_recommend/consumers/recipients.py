"""Who an email goes to: users' addresses come from UserService.

Lookups made within an ``EffectScope`` are asked once per received batch:
ten emails of one batch to one customer cost one GetUser.
"""

from __future__ import annotations

import logging

from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.platform.errors import InvalidArgument, NotFound
from ec_recommend.platform.events.consumer import EffectScope

log = logging.getLogger(__name__)


class Recipients:
    def __init__(self, users: pb_user.UserServiceStub) -> None:
        self._users = users

    async def user_email(self, user_id: str, scope: EffectScope | None = None) -> str | None:
        """The address of an active user; None if the user is gone or deactivated."""
        if scope is not None:
            return await scope.once(("user_email", user_id), lambda: self.user_email(user_id))
        try:
            user = await self._users.get_user(pb_user.GetUserRequest(user_id=user_id))
        except NotFound:
            log.warning("no user %s: email not sent", user_id)
            return None
        if not user.active or not user.email:
            return None
        return user.email

    async def seller_email(self, seller_id: str, scope: EffectScope | None = None) -> str | None:
        """A seller's address: the account that carries this seller id."""
        if scope is not None:
            return await scope.once(
                ("seller_email", seller_id), lambda: self.seller_email(seller_id)
            )
        try:
            user = await self._users.get_user(pb_user.GetUserRequest(seller_id=seller_id))
        except (NotFound, InvalidArgument):
            log.warning("no user for seller %s: email not sent", seller_id)
            return None
        return user.email if user.active and user.email else None
