"""A service port is not a back door: without mTLS, a raw gRPC client that
claims an identity in plain metadata, or signs one with the wrong key, or
with a stale token, is refused; only the signed identity gets through."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.config import Config, StorageConfig
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.rpc.context import Identity
from ec_recommend.platform.security.call_token import METADATA_KEY, CallSigner
from ec_recommend.runtime.host import HostedServices, host_services

pytestmark = pytest.mark.asyncio

KEY = secrets.token_bytes(32)


@pytest_asyncio.fixture
async def hosted(tmp_path: Path) -> AsyncIterator[HostedServices]:
    config = Config(storage=StorageConfig(data_dir=tmp_path))
    config = replace(config, tls=replace(config.tls, call_key=KEY))  # mTLS stays off
    assert not config.tls.enabled
    async with host_services(config, ["user", "product"]) as services:
        yield services


async def _get_user(port: int, metadata: dict[str, str]) -> pb_user.User:
    async with Channel("127.0.0.1", port) as channel:
        stub = pb_user.UserServiceStub(channel)
        return await stub.get_user(pb_user.GetUserRequest(user_id=new_id()), metadata=metadata)


def _status(caught: pytest.ExceptionInfo[GRPCError]) -> Status:
    return caught.value.status


ADMIN = Identity(user_id=new_id(), roles=frozenset({"admin"}))


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"x-user-id": ADMIN.user_id, "x-user-roles": "admin"},
        {METADATA_KEY: CallSigner(secrets.token_bytes(32)).sign("gateway", ADMIN)},
        {METADATA_KEY: CallSigner(KEY, ttl=-1).sign("gateway", ADMIN)},  # expired
        {METADATA_KEY: "not.a-token"},
    ],
    ids=["nothing", "forged x-user-roles admin", "wrong key", "stale", "garbage"],
)
async def test_a_raw_client_without_the_signed_identity_is_unauthenticated(
    hosted: HostedServices, metadata: dict[str, str]
) -> None:
    port = hosted.servers["user"].port
    with pytest.raises(GRPCError) as caught:
        await _get_user(port, metadata)
    assert _status(caught) is Status.UNAUTHENTICATED


async def test_a_privileged_stock_move_needs_a_service_identity(hosted: HostedServices) -> None:
    async with Channel("127.0.0.1", hosted.servers["product"].port) as channel:
        stub = pb_product.ProductServiceStub(channel)
        request = pb_product.ReserveStockRequest(reservation_id=new_id())
        with pytest.raises(GRPCError) as caught:
            await stub.reserve_stock(request, metadata={"x-user-roles": "admin"})
    assert _status(caught) is Status.UNAUTHENTICATED


async def test_the_signed_identity_is_what_the_service_sees(hosted: HostedServices) -> None:
    signer = CallSigner(KEY)
    async with Channel("127.0.0.1", hosted.servers["user"].port) as channel:
        stub = pb_user.UserServiceStub(channel)
        created = await stub.create_user(  # the gateway registering an account
            pb_user.CreateUserRequest(cognito_user_id="sub-1", email="a@example.com"),
            metadata={METADATA_KEY: signer.sign("gateway", None)},
        )
        read = pb_user.GetUserRequest(user_id=created.id)
        admin = await stub.get_user(read, metadata={METADATA_KEY: signer.sign("gateway", ADMIN)})
        assert admin.email == "a@example.com"
        stranger = Identity(user_id=new_id(), roles=frozenset({"customer"}))
        with pytest.raises(GRPCError) as caught:
            await stub.get_user(read, metadata={METADATA_KEY: signer.sign("gateway", stranger)})
        assert _status(caught) in (Status.PERMISSION_DENIED, Status.NOT_FOUND)
