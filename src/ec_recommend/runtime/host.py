"""Run any set of services in one process, on one event loop.

Each service gets its own gRPC server and port. Services hosted together
reach each other through the same client factory as remote ones, at the
ports they actually bound. Shutdown drains every server at once, then closes
the services' resources (databases) and finally the client channels.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from ec_recommend.config import Config, Endpoint
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.server import RpcServer
from ec_recommend.runtime.registry import ServiceEnv, builder


@dataclass
class HostedServices:
    servers: dict[str, RpcServer]
    clients: ClientFactory

    def endpoints(self) -> dict[str, str]:
        return {name: server.address for name, server in self.servers.items()}

    async def drain(self) -> None:
        await asyncio.gather(*(server.drain() for server in self.servers.values()))


@asynccontextmanager
async def host_services(
    config: Config, names: Sequence[str], clients: ClientFactory | None = None
) -> AsyncIterator[HostedServices]:
    async with AsyncExitStack() as stack:
        if clients is None:
            clients = await stack.enter_async_context(
                ClientFactory(
                    config.rpc.endpoints,
                    pool_size=config.rpc.pool_size,
                    timeout=config.rpc.default_timeout,
                )
            )
        env = ServiceEnv(config=config, clients=clients)
        servers: dict[str, RpcServer] = {}
        for name in dict.fromkeys(names):
            handlers = await stack.enter_async_context(builder(name)(env))
            server = await stack.enter_async_context(
                RpcServer(
                    name,
                    handlers,
                    host=config.rpc.host,
                    port=config.rpc.ports.get(name, 0),
                    drain_timeout=config.rpc.drain_timeout,
                )
            )
            if name not in config.rpc.endpoints:
                clients.add_endpoints(name, [Endpoint(config.rpc.host, server.port)])
            servers[name] = server
        hosted = HostedServices(servers, clients)
        try:
            yield hosted
        finally:
            await hosted.drain()
