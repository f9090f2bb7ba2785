"""UserService over gRPC."""

from __future__ import annotations

from typing import Any

from ec_recommend._gen.ecommerce import user as pb
from ec_recommend.platform.clock import aware
from ec_recommend.platform.errors import InvalidArgument, NotFound
from ec_recommend.platform.ids import require_id
from ec_recommend.platform.rpc.context import current_call
from ec_recommend.services.user import domain
from ec_recommend.services.user.store import UserStore

MAX_USERS_PER_CALL = 100


def user_to_pb(row: Any) -> pb.User:
    return pb.User(
        id=row.id,
        cognito_user_id=row.cognito_user_id,
        email=row.email,
        phone_number=row.phone_number,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        active=bool(row.active),
        seller_id=row.seller_id or "",
    )


def profile_to_pb(row: Any) -> pb.UserProfile:
    return pb.UserProfile(
        user_id=row.user_id,
        display_name=row.display_name,
        avatar_url=row.avatar_url,
        preferences=dict(row.preferences),
    )


def _check_self(user_id: str) -> None:
    """End users see and change only themselves (others look absent); admins anyone."""
    identity = current_call().identity
    if identity is not None and not identity.is_admin and identity.user_id != user_id:
        raise NotFound(f"user {user_id} not found", user_id=user_id)


class UserService(pb.UserServiceBase):
    def __init__(self, store: UserStore) -> None:
        self.store = store

    async def _resolve(self, message: pb.GetUserRequest) -> Any:
        if message.cognito_user_id:
            subject = domain.validate_subject(message.cognito_user_id)
            row = await self.store.find(cognito_user_id=subject)
            if row is None:
                raise NotFound("user not found", cognito_user_id=subject)
        elif message.seller_id:
            seller_id = domain.validate_seller_id(message.seller_id)
            row = await self.store.find(seller_id=seller_id)
            if row is None:
                raise NotFound("user not found", seller_id=seller_id)
        else:
            row = await self.store.get(require_id(message.user_id or "", "user_id"))
        _check_self(row.id)
        return row

    async def get_user(self, message: pb.GetUserRequest) -> pb.User:
        return user_to_pb(await self._resolve(message))

    async def get_users(self, message: pb.GetUsersRequest) -> pb.GetUsersResponse:
        if len(message.user_ids) > MAX_USERS_PER_CALL:
            raise InvalidArgument(
                f"at most {MAX_USERS_PER_CALL} user ids per call", field="user_ids"
            )
        user_ids = list(dict.fromkeys(require_id(i, "user_ids") for i in message.user_ids))
        identity = current_call().identity
        if identity is not None and not identity.is_admin:
            # End users see only themselves; the others look absent.
            user_ids = [i for i in user_ids if i == identity.user_id]
        return pb.GetUsersResponse(
            users=[user_to_pb(row) for row in await self.store.find_many(user_ids)]
        )

    async def create_user(self, message: pb.CreateUserRequest) -> pb.User:
        row, _created = await self.store.create(
            subject=domain.validate_subject(message.cognito_user_id),
            email=domain.validate_email(message.email),
            phone=domain.validate_phone(message.phone_number),
            display_name=domain.validate_display_name(message.display_name),
            seller_id=domain.validate_seller_id(message.seller_id, required=False),
            relink_email=message.relink_email,
        )
        return user_to_pb(row)

    async def update_user(self, message: pb.UpdateUserRequest) -> pb.User:
        user_id = require_id(message.user_id, "user_id")
        _check_self(user_id)
        changes: dict[str, Any] = {}
        if message.email is not None:
            changes["email"] = domain.validate_email(message.email)
        if message.phone_number is not None:
            changes["phone_number"] = domain.validate_phone(message.phone_number)
        if not changes:
            return user_to_pb(await self.store.get(user_id))
        return user_to_pb(await self.store.update(user_id, changes))

    async def deactivate_user(self, message: pb.GetUserRequest) -> pb.User:
        row = await self._resolve(message)
        return user_to_pb(await self.store.update(row.id, {"active": False}))

    async def get_user_profile(self, message: pb.GetUserRequest) -> pb.UserProfile:
        row = await self._resolve(message)
        return profile_to_pb(await self.store.profile(row.id))

    async def update_user_profile(self, message: pb.UpdateUserProfileRequest) -> pb.UserProfile:
        user_id = require_id(message.user_id, "user_id")
        _check_self(user_id)
        changes: dict[str, Any] = {}
        if message.display_name is not None:
            changes["display_name"] = domain.validate_display_name(message.display_name)
        if message.avatar_url is not None:
            changes["avatar_url"] = domain.validate_avatar_url(message.avatar_url)
        if message.preferences:
            current = await self.store.profile(user_id)
            changes["preferences"] = domain.merge_preferences(
                current.preferences, message.preferences
            )
        if len(changes) == 0 and not message.preferences:
            return profile_to_pb(await self.store.profile(user_id))
        return profile_to_pb(await self.store.update_profile(user_id, changes))
