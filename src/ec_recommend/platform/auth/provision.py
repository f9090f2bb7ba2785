"""Create the Cognito user pool, app client and groups — or find them.

Idempotent: every resource is looked up by name before it is created, so
``ec-recommend up`` and ``ec-recommend provision`` can run any number of times
against moto or AWS and end with the same ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from ec_recommend.config import AuthConfig
from ec_recommend.platform.auth.cognito import SELLER_ID_ATTRIBUTE, cognito_client
from ec_recommend.platform.auth.context import GROUPS
from ec_recommend.platform.aws import LocalAws

log = logging.getLogger(__name__)

SELLER_ID_SCHEMA = {
    "Name": SELLER_ID_ATTRIBUTE.removeprefix("custom:"),
    "AttributeDataType": "String",
    "Mutable": True,
    "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "64"},
}
PASSWORD_POLICY = {
    "MinimumLength": 8,
    "RequireUppercase": True,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": False,
}
# The app client may read custom:seller_id (it lands in the ID token) but
# not write it: only the admin API (our sign-up) sets it.
READ_ATTRIBUTES = ["email", "email_verified", "name", SELLER_ID_ATTRIBUTE]
WRITE_ATTRIBUTES = ["email", "name"]
AUTH_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
GROUP_DESCRIPTIONS = {
    "customer": "Shoppers",
    "seller": "Sellers managing their products",
    "admin": "Operators",
}


@dataclass(frozen=True)
class AuthSettings:
    """Where the provisioned pool is: what ``AuthConfig`` needs to use it."""

    user_pool_id: str
    client_id: str
    issuer: str
    jwks_url: str
    region: str
    endpoint_url: str | None

    def apply(self, auth: AuthConfig) -> AuthConfig:
        """``auth`` pointed at this pool (other settings kept)."""
        return replace(
            auth,
            user_pool_id=self.user_pool_id,
            client_id=self.client_id,
            issuer=self.issuer,
            jwks_url=self.jwks_url,
            region=self.region,
            endpoint_url=self.endpoint_url,
        )


async def provision_user_pool(aws: LocalAws | AuthConfig, name: str | None = None) -> AuthSettings:
    """Ensure pool ``name`` (default ``auth.pool_name``), its app client and groups exist.

    ``aws`` is the local moto server, or an ``AuthConfig`` (its
    ``endpoint_url`` is ``None`` for AWS itself).
    """
    if isinstance(aws, LocalAws):
        auth = AuthConfig(region=aws.region, endpoint_url=aws.endpoint_url)
    else:
        auth = aws
    pool_name = name or auth.pool_name
    async with cognito_client(auth) as client:
        pool_id = await _ensure_pool(client, pool_name)
        client_id = await _ensure_app_client(client, pool_id, f"{pool_name}-app")
        await _ensure_groups(client, pool_id)
    settings = AuthSettings(
        user_pool_id=pool_id,
        client_id=client_id,
        issuer="",
        jwks_url="",
        region=auth.region,
        endpoint_url=auth.endpoint_url,
    )
    # AuthConfig derives the AWS issuer and the JWKS URL (moto's or AWS's).
    resolved = settings.apply(auth)
    settings = replace(
        settings, issuer=resolved.resolved_issuer, jwks_url=resolved.resolved_jwks_url
    )
    log.info("Cognito user pool %s (%s), app client %s", pool_name, pool_id, client_id)
    return settings


async def _ensure_pool(client: Any, name: str) -> str:
    pool_id = await _find_pool(client, name)
    if pool_id is None:
        response = await client.create_user_pool(
            PoolName=name,
            UsernameAttributes=["email"],
            AutoVerifiedAttributes=["email"],
            Policies={"PasswordPolicy": PASSWORD_POLICY},
            Schema=[SELLER_ID_SCHEMA],
            AdminCreateUserConfig={"AllowAdminCreateUserOnly": False},
        )
        return str(response["UserPool"]["Id"])
    described = await client.describe_user_pool(UserPoolId=pool_id)
    names = {attr["Name"] for attr in described["UserPool"].get("SchemaAttributes", [])}
    if SELLER_ID_ATTRIBUTE not in names:
        await client.add_custom_attributes(UserPoolId=pool_id, CustomAttributes=[SELLER_ID_SCHEMA])
    return pool_id


async def _find_pool(client: Any, name: str) -> str | None:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"MaxResults": 60}
        if token:
            kwargs["NextToken"] = token
        page = await client.list_user_pools(**kwargs)
        for pool in page.get("UserPools", []):
            if pool.get("Name") == name:
                return str(pool["Id"])
        token = page.get("NextToken")
        if not token:
            return None


async def _ensure_app_client(client: Any, pool_id: str, name: str) -> str:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"UserPoolId": pool_id, "MaxResults": 60}
        if token:
            kwargs["NextToken"] = token
        page = await client.list_user_pool_clients(**kwargs)
        for app in page.get("UserPoolClients", []):
            if app.get("ClientName") == name:
                return str(app["ClientId"])
        token = page.get("NextToken")
        if not token:
            break
    response = await client.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=name,
        GenerateSecret=False,
        ExplicitAuthFlows=AUTH_FLOWS,
        ReadAttributes=READ_ATTRIBUTES,
        WriteAttributes=WRITE_ATTRIBUTES,
        PreventUserExistenceErrors="ENABLED",
    )
    return str(response["UserPoolClient"]["ClientId"])


async def _ensure_groups(client: Any, pool_id: str) -> None:
    for group in GROUPS:
        try:
            await client.create_group(
                UserPoolId=pool_id, GroupName=group, Description=GROUP_DESCRIPTIONS[group]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "GroupExistsException":
                raise
