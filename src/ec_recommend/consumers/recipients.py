"""Who an email goes to: users' addresses come from UserService.

Lookups made within an ``EffectScope`` are asked once per received batch:
ten emails of one batch to one customer cost one lookup, and the customers
of a batch are looked up together, in one GetUsers.
"""

from __future__ import annotations

import logging
import uuid

from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.platform.errors import InvalidArgument, NotFound
from ec_recommend.platform.events.consumer import EffectScope

log = logging.getLogger(__name__)

GET_USERS_LIMIT = 100  # user ids per GetUsers, as UserService allows


class Recipients:
    def __init__(self, users: pb_user.UserServiceStub) -> None:
        self._users = users

    async def user_email(self, user_id: str, scope: EffectScope | None = None) -> str | None:
        """The address of an active user; None if the user is gone or deactivated."""
        if scope is not None:
            return await scope.once(
                ("user_email", user_id),
                lambda: scope.together("user_emails", user_id, self._user_emails),
            )
        try:
            user = await self._users.get_user(pb_user.GetUserRequest(user_id=user_id))
        except NotFound:
            log.warning("no user %s: email not sent", user_id)
            return None
        return _address(user)

    async def _user_emails(self, user_ids: list[str]) -> list[str | None]:
        """Each user's address, as ``user_email`` gives it, in one call per
        hundred users. An id that is not one is nobody's (asked for, it would
        fail the call for every other user of the batch)."""
        canonical = {user_id: _canonical(user_id) for user_id in dict.fromkeys(user_ids)}
        asked = [i for i in dict.fromkeys(canonical.values()) if i is not None]
        found: dict[str, pb_user.User] = {}
        for start in range(0, len(asked), GET_USERS_LIMIT):
            request = pb_user.GetUsersRequest(user_ids=asked[start : start + GET_USERS_LIMIT])
            found.update((user.id, user) for user in (await self._users.get_users(request)).users)
        users = {user_id: found.get(known or "") for user_id, known in canonical.items()}
        for user_id, user in users.items():
            if user is None:
                log.warning("no user %s: email not sent", user_id)
        return [_address(users[user_id]) for user_id in user_ids]

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
        return _address(user)


def _address(user: pb_user.User | None) -> str | None:
    return user.email if user is not None and user.active and user.email else None


def _canonical(user_id: str) -> str | None:
    """The id as UserService spells it; None if it is not an id."""
    try:
        return str(uuid.UUID(user_id))
    except ValueError:
        return None
