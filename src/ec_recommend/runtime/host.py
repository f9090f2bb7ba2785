"""Run any set of services in one process, on one event loop.

Each service gets its own gRPC server and port (for other processes).
Services hosted together reach each other through the same client factory
as remote ones, under the mesh policies and identities of the config, but
in process: straight to the server's pipeline, without sockets
(platform/rpc/local.py). ``rpc.in_process: false`` (``EC_RPC_IN_PROCESS=0``)
sends them over loopback to the ports they bound, with mTLS when configured.
Shutdown drains every server at once, closes the servers, then the services'
resources (databases, stores) and finally the client channels. A gateway
hosted in the same process must stop first: enter it inside this block.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from ec_recommend.config import Config, Endpoint
from ec_recommend.platform.events.published_here import PublishedHere
from ec_recommend.platform.events.relay import OutboxRelay, outbox_relays
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.server import RpcServer
from ec_recommend.platform.security.allowlist import service_identity_middleware
from ec_recommend.platform.security.call_token import signer_for
from ec_recommend.platform.security.identity import acting_as
from ec_recommend.platform.security.tls import server_context
from ec_recommend.platform.telemetry.rpc import server_middleware
from ec_recommend.runtime.registry import ServiceEnv, builder


@dataclass
class HostedServices:
    servers: dict[str, RpcServer]
    clients: ClientFactory
    relays: list[OutboxRelay] = field(default_factory=list)  # one per outbox, when events run

    def endpoints(self) -> dict[str, str]:
        return {name: server.address for name, server in self.servers.items()}

    async def drain(self) -> None:
        await asyncio.gather(*(server.drain() for server in self.servers.values()))


@asynccontextmanager
async def host_services(
    config: Config,
    names: Sequence[str],
    clients: ClientFactory | None = None,
    *,
    identity: str | None = None,
    relays_after: Awaitable[object] | None = None,
    published_here: PublishedHere | None = None,
) -> AsyncIterator[HostedServices]:
    """Host ``names``; ``identity``: who calls made outside them present (see ClientFactory).

    ``relays_after``: the outbox relays start only once it is done (``up``
    builds the services while it provisions the topology they publish to).
    ``published_here`` hears what the relays publish (a gateway in this process).
    """
    async with AsyncExitStack() as stack:
        if clients is None:
            clients = await stack.enter_async_context(
                ClientFactory.from_config(config, identity=identity)
            )
        signer = signer_for(config)
        if clients.signing.signer is None:  # made without a config: sign as this host does
            clients.signing.signer = signer
        env = ServiceEnv(config=config, clients=clients)
        # Exit order: servers (after the drain) before the stores they use,
        # the stores before the client channels.
        stores = await stack.enter_async_context(AsyncExitStack())
        serving = await stack.enter_async_context(AsyncExitStack())
        servers: dict[str, RpcServer] = {}
        for name in dict.fromkeys(names):
            # Tasks the service starts here (sweeps, projection syncs) inherit
            # this context: their calls present the service's own certificate.
            with acting_as(name):
                handlers = await stores.enter_async_context(builder(name)(env))
            middlewares = [
                server_middleware(name),
                service_identity_middleware(name, clients.mesh.policy(name), config.tls, signer),
            ]
            server = await serving.enter_async_context(
                RpcServer(
                    name,
                    handlers,
                    host=config.rpc.host,
                    port=config.rpc.ports.get(name, 0),
                    drain_timeout=config.rpc.drain_timeout,
                    middlewares=middlewares,
                    ssl_context=server_context(config.tls, name),
                    transport=config.rpc.transport,
                )
            )
            if name not in config.rpc.endpoints:
                clients.add_endpoints(name, [Endpoint(config.rpc.host, server.port)])
            if config.rpc.in_process:
                clients.host_locally(server)
            servers[name] = server
        relays: list[OutboxRelay] = []
        if relays_after is not None:
            await relays_after
        if config.events.enabled and env.outboxes:
            # Entered last, so relays stop before the stores they read close.
            relays = await stack.enter_async_context(
                outbox_relays(config.events, env.outboxes, published_here)
            )
        hosted = HostedServices(servers, clients, relays)
        try:
            yield hosted
        finally:
            await hosted.drain()
