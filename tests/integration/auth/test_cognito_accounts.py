"""Cognito accounts and token verification against moto's server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio
from botocore.exceptions import ClientError

from ec_recommend.config import AuthConfig
from ec_recommend.platform import errors
from ec_recommend.platform.auth.cognito import CognitoAccounts, cognito_client, open_accounts
from ec_recommend.platform.auth.provision import AuthSettings, provision_user_pool
from ec_recommend.platform.auth.verifier import TokenVerifier
from ec_recommend.runtime.local_aws import LocalAws, free_port

pytestmark = pytest.mark.asyncio

PASSWORD = "Passw0rdExample"


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@pytest_asyncio.fixture
async def settings(local_aws: LocalAws) -> AuthSettings:
    return await provision_user_pool(local_aws, f"pool-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def auth(settings: AuthSettings) -> AuthConfig:
    return settings.apply(AuthConfig(auto_confirm=True, allow_seller_signup=True))


@pytest_asyncio.fixture
async def accounts(auth: AuthConfig) -> AsyncIterator[CognitoAccounts]:
    async with open_accounts(auth) as opened:
        yield opened


@pytest_asyncio.fixture
async def verifier(auth: AuthConfig) -> AsyncIterator[TokenVerifier]:
    async with TokenVerifier.from_config(auth) as opened:
        yield opened


async def test_provisioning_twice_finds_the_same_pool_client_and_groups(
    local_aws: LocalAws,
) -> None:
    name = f"pool-{uuid.uuid4().hex[:8]}"
    first = await provision_user_pool(local_aws, name)
    second = await provision_user_pool(local_aws, name)
    assert first == second
    assert first.user_pool_id.startswith(f"{local_aws.region}_")
    assert first.issuer == (
        f"https://cognito-idp.{local_aws.region}.amazonaws.com/{first.user_pool_id}"
    )
    assert first.jwks_url == (
        f"{local_aws.endpoint_url}/{first.user_pool_id}/.well-known/jwks.json"
    )


async def test_signup_login_verify_refresh(
    accounts: CognitoAccounts, verifier: TokenVerifier
) -> None:
    email = unique_email()
    signed_up = await accounts.signup(email, PASSWORD, "Hanako", "customer")
    assert signed_up.confirmed
    assert signed_up.seller_id is None

    tokens = await accounts.login(email, PASSWORD)
    from_id = await verifier.verify(tokens.id_token)
    assert from_id.user_id == signed_up.sub
    assert from_id.email == email
    assert from_id.roles == ("customer",)
    assert from_id.seller_id is None

    from_access = await verifier.verify(tokens.access_token)
    assert from_access.user_id == signed_up.sub
    assert from_access.roles == ("customer",)
    assert from_access.email == ""  # resolved through UserService by the gateway

    refreshed = await accounts.refresh(tokens.refresh_token)
    assert refreshed.refresh_token == tokens.refresh_token
    assert (await verifier.verify(refreshed.id_token)).user_id == signed_up.sub
    assert (await verifier.verify(refreshed.access_token)).user_id == signed_up.sub


async def test_seller_signup_gets_group_and_seller_id_in_the_id_token(
    accounts: CognitoAccounts, verifier: TokenVerifier
) -> None:
    email = unique_email()
    signed_up = await accounts.signup(email, PASSWORD, None, "seller")
    assert signed_up.seller_id
    context = await verifier.verify((await accounts.login(email, PASSWORD)).id_token)
    assert context.roles == ("seller",)
    assert context.seller_id == signed_up.seller_id
    assert context.is_seller


async def test_seller_signup_is_refused_where_not_allowed(auth: AuthConfig) -> None:
    async with open_accounts(replace(auth, allow_seller_signup=False)) as accounts:
        with pytest.raises(errors.PermissionDenied):
            await accounts.signup(unique_email(), PASSWORD, None, "seller")


async def test_duplicate_signup_is_already_exists(accounts: CognitoAccounts) -> None:
    email = unique_email()
    await accounts.signup(email, PASSWORD)
    with pytest.raises(errors.AlreadyExists) as raised:
        await accounts.signup(email, PASSWORD)
    assert raised.value.details["field"] == "email"


async def test_weak_password_names_the_field(accounts: CognitoAccounts) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        await accounts.signup(unique_email(), "alllowercase")  # long enough, policy says no
    assert raised.value.details["field"] == "password"


async def test_wrong_password_and_unknown_user_look_the_same(accounts: CognitoAccounts) -> None:
    email = unique_email()
    await accounts.signup(email, PASSWORD)
    with pytest.raises(errors.Unauthenticated) as wrong_password:
        await accounts.login(email, PASSWORD + "x")
    with pytest.raises(errors.Unauthenticated) as unknown_user:
        await accounts.login(unique_email(), PASSWORD)
    assert wrong_password.value.message == unknown_user.value.message


async def test_unconfirmed_account_cannot_log_in_until_confirmed(auth: AuthConfig) -> None:
    async with open_accounts(replace(auth, auto_confirm=False)) as accounts:
        email = unique_email()
        signed_up = await accounts.signup(email, PASSWORD)
        assert not signed_up.confirmed
        with pytest.raises(errors.FailedPrecondition):
            await accounts.login(email, PASSWORD)
        await accounts.confirm(email, "123456")  # moto accepts any code
        assert (await accounts.login(email, PASSWORD)).id_token


async def test_disabled_user_cannot_log_in_or_refresh(accounts: CognitoAccounts) -> None:
    email = unique_email()
    signed_up = await accounts.signup(email, PASSWORD)
    tokens = await accounts.login(email, PASSWORD)
    await accounts.disable(signed_up.sub)
    with pytest.raises(errors.Unauthenticated) as disabled:
        await accounts.login(email, PASSWORD)
    assert disabled.value.message == "incorrect email or password"
    with pytest.raises(errors.Unauthenticated):
        await accounts.refresh(tokens.refresh_token)


async def test_disabling_an_unknown_user_is_not_found(accounts: CognitoAccounts) -> None:
    with pytest.raises(errors.NotFound):
        await accounts.disable(str(uuid.uuid4()))


async def test_garbage_refresh_token_is_unauthenticated(accounts: CognitoAccounts) -> None:
    with pytest.raises(errors.Unauthenticated):
        await accounts.refresh("not-a-refresh-token")


async def test_failed_group_assignment_leaves_no_account_behind(
    auth: AuthConfig, accounts: CognitoAccounts
) -> None:
    async with cognito_client(auth) as client:
        await client.delete_group(UserPoolId=auth.user_pool_id, GroupName="seller")
        email = unique_email()
        with pytest.raises(errors.Unavailable):
            await accounts.signup(email, PASSWORD, None, "seller")
        with pytest.raises(ClientError) as lookup:
            await client.admin_get_user(UserPoolId=auth.user_pool_id, Username=email)
        assert lookup.value.response["Error"]["Code"] == "UserNotFoundException"

    await provision_user_pool(auth, await pool_name(auth))  # puts the group back
    assert (await accounts.signup(email, PASSWORD, None, "seller")).seller_id


async def test_unreachable_cognito_is_unavailable(auth: AuthConfig) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with open_accounts(replace(auth, endpoint_url=closed)) as accounts:
        with pytest.raises(errors.Unavailable):
            await accounts.login(unique_email(), PASSWORD)


async def pool_name(auth: AuthConfig) -> str:
    async with cognito_client(auth) as client:
        described = await client.describe_user_pool(UserPoolId=auth.user_pool_id)
    return str(described["UserPool"]["Name"])
