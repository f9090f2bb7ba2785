"""User accounts in a Cognito user pool, through aiobotocore.

``CognitoAccounts`` is what the ``/auth/*`` handlers call. Cognito's errors
become typed errors here: a wrong password, an unknown account and a disabled
account are the same ``Unauthenticated`` (no account enumeration).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend.config import AuthConfig
from ec_recommend.platform import errors
from ec_recommend.platform.auth.cognito_errors import (
    BAD_CREDENTIALS,
    error_code,
    raise_mapped,
    raise_unavailable,
)
from ec_recommend.platform.auth.context import CUSTOMER, SELLER
from ec_recommend.platform.aws import open_aws_client

log = logging.getLogger(__name__)

SIGNUP_ROLES = (CUSTOMER, SELLER)
SELLER_ID_ATTRIBUTE = "custom:seller_id"
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 254
MIN_PASSWORD, MAX_PASSWORD = 8, 256
MAX_DISPLAY_NAME = 100
MAX_CODE = 64
MAX_REFRESH_TOKEN = 8 * 1024


@dataclass(frozen=True)
class SignupResult:
    sub: str  # Cognito user id; UserService's cognito_user_id
    confirmed: bool
    seller_id: str | None = None


@dataclass(frozen=True)
class Tokens:
    access_token: str
    id_token: str
    refresh_token: str
    expires_in: int


def cognito_client_config() -> AioConfig:
    # Few retries: a caller is waiting on every one of these calls.
    return AioConfig(
        retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10
    )


@asynccontextmanager
async def cognito_client(auth: AuthConfig) -> AsyncIterator[Any]:
    """An aiobotocore cognito-idp client: moto when ``endpoint_url`` is set, else AWS."""
    async with open_aws_client(
        "cognito-idp",
        region=auth.region,
        endpoint_url=auth.endpoint_url,
        config=cognito_client_config(),
    ) as client:
        yield client


@asynccontextmanager
async def open_accounts(auth: AuthConfig) -> AsyncIterator[CognitoAccounts]:
    """``CognitoAccounts`` for the configured pool, with its own client."""
    if not auth.configured:
        raise ValueError("auth.user_pool_id and auth.client_id must be set")
    async with cognito_client(auth) as client:
        yield CognitoAccounts(
            client,
            user_pool_id=auth.user_pool_id,
            client_id=auth.client_id,
            auto_confirm=auth.auto_confirm,
            allow_seller_signup=auth.allow_seller_signup,
        )


class CognitoAccounts:
    """Sign-up, confirmation, login, refresh and deactivation."""

    def __init__(
        self,
        client: Any,
        *,
        user_pool_id: str,
        client_id: str,
        auto_confirm: bool = False,
        allow_seller_signup: bool = False,
        new_seller_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._client = client
        self._pool = user_pool_id
        self._app = client_id
        self._auto_confirm = auto_confirm
        self._allow_seller = allow_seller_signup
        self._new_seller_id = new_seller_id

    async def signup(
        self, email: str, password: str, display_name: str | None = None, role: str = CUSTOMER
    ) -> SignupResult:
        """Create the account, put it in its group; confirm it when configured to.

        The account is deleted again if a later step fails, so a retry with
        the same email is not blocked by a half-made account.
        """
        email = _valid_email(email)
        _valid_password(password)
        if display_name is not None and (
            not isinstance(display_name, str) or len(display_name) > MAX_DISPLAY_NAME
        ):
            raise errors.InvalidArgument(
                f"display_name must be at most {MAX_DISPLAY_NAME} characters", field="display_name"
            )
        if role not in SIGNUP_ROLES:
            raise errors.InvalidArgument("role must be customer or seller", field="role")
        if role == SELLER and not self._allow_seller:
            raise errors.PermissionDenied("seller accounts cannot be created by sign-up")
        attributes = [{"Name": "email", "Value": email}]
        if display_name:
            attributes.append({"Name": "name", "Value": display_name})
        try:
            response = await self._client.sign_up(
                ClientId=self._app, Username=email, Password=password, UserAttributes=attributes
            )
        except ClientError as exc:
            raise_mapped(exc, field="email")
        except BotoCoreError as exc:
            raise_unavailable(exc)
        sub = str(response["UserSub"])
        confirmed = bool(response.get("UserConfirmed"))
        seller_id = self._new_seller_id() if role == SELLER else None
        try:
            await self._setup(email, role, seller_id)
            if self._auto_confirm and not confirmed:
                await self._client.admin_confirm_sign_up(UserPoolId=self._pool, Username=email)
                confirmed = True
        except (ClientError, BotoCoreError) as exc:
            await self._undo_signup(email)
            if isinstance(exc, ClientError):
                raise_mapped(exc)
            raise_unavailable(exc)
        return SignupResult(sub=sub, confirmed=confirmed, seller_id=seller_id)

    async def _setup(self, email: str, role: str, seller_id: str | None) -> None:
        # Admin calls: the app client cannot write custom:seller_id itself.
        if seller_id is not None:
            await self._client.admin_update_user_attributes(
                UserPoolId=self._pool,
                Username=email,
                UserAttributes=[{"Name": SELLER_ID_ATTRIBUTE, "Value": seller_id}],
            )
        await self._client.admin_add_user_to_group(
            UserPoolId=self._pool, Username=email, GroupName=role
        )

    async def _undo_signup(self, email: str) -> None:
        try:
            await self._client.admin_delete_user(UserPoolId=self._pool, Username=email)
        except (ClientError, BotoCoreError) as exc:
            log.error("could not remove half-created account %s: %s", email, exc)

    async def confirm(self, email: str, code: str) -> None:
        email = _valid_email(email)
        if not isinstance(code, str) or not code or len(code) > MAX_CODE:
            raise errors.InvalidArgument("code is required", field="code")
        try:
            await self._client.confirm_sign_up(
                ClientId=self._app, Username=email, ConfirmationCode=code
            )
        except ClientError as exc:
            raise_mapped(exc, field="code", credentials_message="invalid confirmation code")
        except BotoCoreError as exc:
            raise_unavailable(exc)

    async def login(self, email: str, password: str) -> Tokens:
        # Malformed credentials are just wrong credentials: same answer.
        if (
            not isinstance(email, str)
            or not isinstance(password, str)
            or not email
            or not password
            or len(email) > MAX_EMAIL
            or len(password) > MAX_PASSWORD
        ):
            raise errors.Unauthenticated(BAD_CREDENTIALS)
        try:
            response = await self._client.initiate_auth(
                ClientId=self._app,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email.strip().lower(), "PASSWORD": password},
            )
        except ClientError as exc:
            raise_mapped(exc)
        except BotoCoreError as exc:
            raise_unavailable(exc)
        return _tokens(response, refresh_token=None)

    async def refresh(self, refresh_token: str) -> Tokens:
        if (
            not isinstance(refresh_token, str)
            or not refresh_token
            or len(refresh_token) > MAX_REFRESH_TOKEN
        ):
            raise errors.Unauthenticated("invalid refresh token")
        try:
            response = await self._client.initiate_auth(
                ClientId=self._app,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": refresh_token},
            )
        except ClientError as exc:
            raise_mapped(exc, credentials_message="invalid refresh token")
        except BotoCoreError as exc:
            raise_unavailable(exc)
        return _tokens(response, refresh_token=refresh_token)

    async def enabled(self, sub: str) -> bool:
        """Whether the identity provider still has this account, enabled.

        A token stays valid until it expires whatever becomes of its account;
        the gateway asks this (remembering the answer briefly) so an account
        disabled or deleted in the pool stops working within that time.
        """
        try:
            user = await self._client.admin_get_user(UserPoolId=self._pool, Username=sub)
        except ClientError as exc:
            if error_code(exc) == "UserNotFoundException":
                return False
            raise_mapped(exc)
        except BotoCoreError as exc:
            raise_unavailable(exc)
        return bool(user.get("Enabled", True))

    async def disable(self, sub_or_username: str) -> None:
        """Deactivate: no new logins, and every refresh token is revoked."""
        if not isinstance(sub_or_username, str) or not sub_or_username:
            raise errors.InvalidArgument("user is required", field="user")
        try:
            user = await self._client.admin_get_user(
                UserPoolId=self._pool, Username=sub_or_username
            )
            # Sessions are keyed by the sign-in name (the email); Cognito takes
            # it as an alias everywhere, and moto only matches sessions by it.
            attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
            name = attributes.get("email") or str(user["Username"])
            await self._client.admin_disable_user(UserPoolId=self._pool, Username=name)
            await self._client.admin_user_global_sign_out(UserPoolId=self._pool, Username=name)
        except ClientError as exc:
            if error_code(exc) == "UserNotFoundException":
                raise errors.NotFound("user not found") from None
            raise_mapped(exc)
        except BotoCoreError as exc:
            raise_unavailable(exc)


def _tokens(response: Mapping[str, Any], *, refresh_token: str | None) -> Tokens:
    result = response.get("AuthenticationResult")
    if not result:
        # A challenge (new password, MFA) that this API does not offer.
        challenge = str(response.get("ChallengeName", "unknown"))
        raise errors.FailedPrecondition(
            "the account needs an action this API does not support", reason=challenge.lower()
        )
    refreshed = result.get("RefreshToken") or refresh_token
    if not refreshed:
        raise errors.Unavailable("authentication service returned no refresh token")
    return Tokens(
        access_token=str(result["AccessToken"]),
        id_token=str(result["IdToken"]),
        refresh_token=str(refreshed),
        expires_in=int(result.get("ExpiresIn", 3600)),
    )


def _valid_email(email: object) -> str:
    if not isinstance(email, str) or len(email) > MAX_EMAIL or not EMAIL_PATTERN.match(email):
        raise errors.InvalidArgument("email is not a valid address", field="email")
    return email.strip().lower()


def _valid_password(password: object) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise errors.InvalidArgument(
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password"
        )
