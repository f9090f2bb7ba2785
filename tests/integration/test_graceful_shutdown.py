"""SIGTERM drains: in-flight calls finish, new ones are turned away, the process exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.config import Endpoint
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.server import RpcServer
from ec_recommend.platform.security.call_token import CallSigner, data_dir_key
from ec_recommend.runtime.process import until_stopped
from tests.conftest import wait_for

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("rpc_transport")]


class SlowProducts(pb.ProductServiceBase):
    """Answers GetProduct only when the test lets it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished = 0

    async def get_product(self, message: pb.GetProductRequest) -> pb.Product:
        self.started.set()
        await self.release.wait()
        self.finished += 1
        return pb.Product(id=message.product_id, name="slow")


async def test_sigterm_lets_in_flight_calls_complete() -> None:
    service = SlowProducts()
    results: dict[str, object] = {}

    async def body(stop: asyncio.Event) -> None:
        async with (
            RpcServer("product", [service], drain_timeout=10) as server,
            ClientFactory(
                {"product": [Endpoint("127.0.0.1", server.port)]}, pool_size=1
            ) as clients,
        ):
            stub = clients.stub(pb.ProductServiceStub, "product")
            health = HealthStub(clients.invoker("product").pool.pick())
            in_flight = asyncio.create_task(stub.get_product(pb.GetProductRequest(product_id="p1")))
            await service.started.wait()
            os.kill(os.getpid(), signal.SIGTERM)
            await stop.wait()
            draining = asyncio.create_task(server.drain())

            async def not_serving() -> bool:
                status = await health.Check(HealthCheckRequest(service=""))
                return bool(status.status == HealthCheckResponse.NOT_SERVING)

            await wait_for(not_serving, timeout=5)
            with pytest.raises(errors.Unavailable):
                await stub.get_product(pb.GetProductRequest(product_id="late"))
            service.release.set()
            results["reply"] = await in_flight
            await draining

    await asyncio.wait_for(until_stopped(body), 20)
    assert isinstance(results["reply"], pb.Product) and results["reply"].name == "slow"
    assert service.finished == 1


async def test_drain_gives_up_after_its_bound() -> None:
    service = SlowProducts()
    async with (
        RpcServer("product", [service], drain_timeout=0.3) as server,
        ClientFactory({"product": [Endpoint("127.0.0.1", server.port)]}, pool_size=1) as clients,
    ):
        stub = clients.stub(pb.ProductServiceStub, "product")
        stuck = asyncio.create_task(stub.get_product(pb.GetProductRequest(product_id="p")))
        await service.started.wait()
        await asyncio.wait_for(server.drain(), 5)
    with pytest.raises(errors.ServiceError):
        await asyncio.wait_for(stuck, 5)
    assert service.finished == 0


async def _read_ready(stream: asyncio.StreamReader) -> dict[str, object]:
    while True:
        line = await asyncio.wait_for(stream.readline(), 30)
        if not line:
            raise AssertionError("serve exited before it was ready")
        if line.startswith(b"{"):
            ready: dict[str, object] = json.loads(line)
            return ready


async def test_serve_command_runs_services_and_exits_cleanly_on_sigterm(
    tmp_path: Path, rpc_transport: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EC_")}
    env["EC_RPC_TRANSPORT"] = rpc_transport
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ec_recommend.cli",
        "serve",
        "user",
        "product",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        assert child.stdout is not None
        ready = await _read_ready(child.stdout)
        addresses = ready["services"]
        assert isinstance(addresses, dict) and set(addresses) == {"user", "product"}
        endpoints = {name: [Endpoint.parse(addr, key=name)] for name, addr in addresses.items()}
        # signed with the key the process keeps in the data dir, as a peer would
        signer = CallSigner(data_dir_key(tmp_path))
        async with ClientFactory(endpoints, signer=signer) as clients:
            users = clients.stub(pb_user.UserServiceStub, "user")
            created = await users.create_user(
                pb_user.CreateUserRequest(cognito_user_id="s", email="s@example.com")
            )
            calls = [users.get_user(pb_user.GetUserRequest(user_id=created.id)) for _ in range(50)]
            pending = asyncio.gather(*calls, return_exceptions=True)
            child.send_signal(signal.SIGTERM)
            outcomes = await pending
        # Calls that reached the server before the drain complete; later ones are
        # refused as UNAVAILABLE. None may fail any other way.
        assert all(isinstance(o, (pb_user.User, errors.Unavailable)) for o in outcomes), outcomes
        assert await asyncio.wait_for(child.wait(), 20) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
