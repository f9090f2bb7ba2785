"""/api/v1/users: the caller's account and profile (UserService)."""

from __future__ import annotations

from ec_recommend._gen.ecommerce import user as pb
from ec_recommend.edge.gateway.keys import GATEWAY
from ec_recommend.edge.gateway.request import ApiRequest
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.edge.gateway.schema import EMAIL, HTTP_URL_OR_EMPTY, Object, String, StringMap

USER = "user"

UPDATE_USER = Object(
    {
        "email": EMAIL,
        "phone_number": String(
            max_length=16,
            patterns=("^(\\+[1-9][0-9]{6,14})?$",),
            hint="in E.164 form (or empty)",
            description="E.164, e.g. +819012345678",
        ),
    }
)
UPDATE_PROFILE = Object(
    {
        "display_name": String(max_length=100),
        "avatar_url": HTTP_URL_OR_EMPTY,
        "preferences": StringMap(
            String(max_length=500), description='merged key by key; "" removes a key'
        ),
    }
)


def _users(request: ApiRequest) -> pb.UserServiceStub:
    return request.stub(pb.UserServiceStub, USER)


async def get_me(request: ApiRequest) -> pb.User:
    return await _users(request).get_user(pb.GetUserRequest(user_id=request.user.user_id))


async def update_me(request: ApiRequest) -> pb.User:
    return await _users(request).update_user(
        pb.UpdateUserRequest(
            user_id=request.user.user_id,
            email=request.body.get("email"),
            phone_number=request.body.get("phone_number"),
        )
    )


async def deactivate_me(request: ApiRequest) -> None:
    users = _users(request)
    user = await users.deactivate_user(pb.GetUserRequest(user_id=request.user.user_id))
    gateway = request.http.app[GATEWAY]
    if gateway.accounts is not None:
        await gateway.accounts.disable(user.cognito_user_id)
    gateway.identities.forget(user.cognito_user_id)


async def get_profile(request: ApiRequest) -> pb.UserProfile:
    return await _users(request).get_user_profile(pb.GetUserRequest(user_id=request.user.user_id))


async def update_profile(request: ApiRequest) -> pb.UserProfile:
    return await _users(request).update_user_profile(
        pb.UpdateUserProfileRequest(
            user_id=request.user.user_id,
            display_name=request.body.get("display_name"),
            avatar_url=request.body.get("avatar_url"),
            preferences=request.body.get("preferences", {}),
        )
    )


async def get_user(request: ApiRequest) -> pb.User:
    # UserService answers NOT_FOUND for anyone but the caller (or an admin)
    return await _users(request).get_user(pb.GetUserRequest(user_id=request.params["user_id"]))


ENDPOINTS = (
    Endpoint("GET", "/api/v1/users/me", get_me, "The caller's account", response=pb.User),
    Endpoint(
        "PUT",
        "/api/v1/users/me",
        update_me,
        "Change the caller's email or phone number",
        body=UPDATE_USER,
        response=pb.User,
    ),
    Endpoint(
        "DELETE",
        "/api/v1/users/me",
        deactivate_me,
        "Deactivate the caller's account (its tokens stop working)",
        status=204,
    ),
    Endpoint(
        "GET",
        "/api/v1/users/me/profile",
        get_profile,
        "The caller's profile",
        response=pb.UserProfile,
    ),
    Endpoint(
        "PUT",
        "/api/v1/users/me/profile",
        update_profile,
        "Change the caller's profile (only the fields given)",
        body=UPDATE_PROFILE,
        response=pb.UserProfile,
    ),
    Endpoint(
        "GET",
        "/api/v1/users/{user_id}",
        get_user,
        "A user by id: the caller itself, or anyone for an admin (others: 404)",
        response=pb.User,
    ),
)
