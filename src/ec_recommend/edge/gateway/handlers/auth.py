"""/auth/*: sign-up, confirmation, login, refresh (Cognito) and registration."""

from __future__ import annotations

from typing import Any

from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.edge.gateway.accounts import Accounts, Tokens
from ec_recommend.edge.gateway.keys import GATEWAY
from ec_recommend.edge.gateway.request import ApiRequest
from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.edge.gateway.schema import EMAIL, Object, String
from ec_recommend.platform import errors

PASSWORD = String(min_length=1, max_length=256)
# The user pool's policy (platform/auth/provision.py), so a sign-up the
# document calls valid is one the pool accepts.
NEW_PASSWORD = String(
    min_length=8,
    max_length=256,
    patterns=("[a-z]", "[A-Z]", "[0-9]"),
    hint="8 to 256 characters with a lower-case letter, an upper-case letter and a digit",
)

SIGNUP = Object(
    {
        "email": EMAIL,
        "password": NEW_PASSWORD,
        "display_name": String(max_length=100),
        "role": String(enum=("customer", "seller")),
    },
    required=("email", "password"),
)
CONFIRM = Object(
    {"email": EMAIL, "code": String(min_length=1, max_length=64)}, required=("email", "code")
)
LOGIN = Object({"email": EMAIL, "password": PASSWORD}, required=("email", "password"))
REFRESH = Object(
    {"refresh_token": String(min_length=1, max_length=8192)}, required=("refresh_token",)
)

TOKENS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "access_token": {"type": "string"},
        "id_token": {"type": "string"},
        "refresh_token": {"type": "string"},
        "expires_in": {"type": "integer"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
    },
}


def _accounts(request: ApiRequest) -> Accounts:
    accounts = request.http.app[GATEWAY].accounts
    if accounts is None:
        raise errors.Unavailable("accounts are not configured on this gateway")
    return accounts


def _tokens(tokens: Tokens) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "id_token": tokens.id_token,
        "refresh_token": tokens.refresh_token,
        "expires_in": tokens.expires_in,
        "token_type": "Bearer",
    }


async def signup(request: ApiRequest) -> dict[str, Any]:
    body = request.body
    display_name = body.get("display_name", "")
    result = await _accounts(request).signup(
        body["email"], body["password"], display_name, body.get("role", "customer")
    )
    user = await request.stub(pb_user.UserServiceStub, "user").create_user(
        pb_user.CreateUserRequest(
            cognito_user_id=result.sub,
            email=body["email"],
            display_name=display_name,
            seller_id=result.seller_id or "",
            # Cognito just took this email, so an account of ours holding it
            # under an older subject belongs to a Cognito user that is gone.
            relink_email=True,
        )
    )
    return {"user_id": user.id, "email": user.email, "confirmed": result.confirmed}


async def confirm(request: ApiRequest) -> dict[str, Any]:
    await _accounts(request).confirm(request.body["email"], request.body["code"])
    return {"confirmed": True}


async def login(request: ApiRequest) -> dict[str, Any]:
    return _tokens(await _accounts(request).login(request.body["email"], request.body["password"]))


async def refresh(request: ApiRequest) -> dict[str, Any]:
    return _tokens(await _accounts(request).refresh(request.body["refresh_token"]))


ENDPOINTS = (
    Endpoint(
        "POST",
        "/auth/signup",
        signup,
        "Create an account (role seller only where allowed)",
        body=SIGNUP,
        status=201,
        json_response={
            "type": "object",
            "properties": {
                "user_id": {"type": "string"},
                "email": {"type": "string"},
                "confirmed": {"type": "boolean"},
            },
        },
    ),
    Endpoint(
        "POST",
        "/auth/confirm",
        confirm,
        "Confirm an account with the emailed code",
        body=CONFIRM,
        json_response={"type": "object", "properties": {"confirmed": {"type": "boolean"}}},
    ),
    Endpoint(
        "POST",
        "/auth/login",
        login,
        "Log in; wrong credentials: 401",
        body=LOGIN,
        json_response=TOKENS_SCHEMA,
    ),
    Endpoint(
        "POST",
        "/auth/refresh",
        refresh,
        "New tokens for a refresh token",
        body=REFRESH,
        json_response=TOKENS_SCHEMA,
    ),
)
