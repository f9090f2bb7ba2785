"""One gRPC server per service: health, call context, error translation,
graceful drain.

Shutdown drains before it closes: health turns NOT_SERVING, the listening
socket stops accepting, requests arriving on open connections get
UNAVAILABLE (so a client retries elsewhere), and in-flight requests get up to
``drain_timeout`` to finish before whatever is left is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from grpclib.const import Status
from grpclib.events import RecvRequest, listen
from grpclib.exceptions import GRPCError
from grpclib.health.check import ServiceStatus
from grpclib.health.service import Health
from grpclib.protocol import H2Protocol
from grpclib.server import Server, Stream

from ec_recommend.platform import errors
from ec_recommend.platform.rpc.codec import FastProtoCodec
from ec_recommend.platform.rpc.context import CallContext, call_scope
from ec_recommend.platform.rpc.status import ErrorDetailsCodec, to_grpc_error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerCall:
    """What middleware sees of an incoming call."""

    service: str
    method: str  # full gRPC path, e.g. /ecommerce.product.ProductService/GetProduct
    stream: Stream[Any, Any]
    peer_cert: dict[str, Any] | None


Handler = Callable[[], Awaitable[None]]
ServerMiddleware = Callable[[ServerCall, Handler], Awaitable[None]]


class RpcServer:
    """Hosts the handlers of one service on one port (0 = ephemeral)."""

    def __init__(
        self,
        service: str,
        handlers: Sequence[Any],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        drain_timeout: float = 10.0,
        middlewares: Sequence[ServerMiddleware] = (),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.service = service
        self._handlers = list(handlers)
        self._host = host
        self._requested_port = port
        self._drain_timeout = drain_timeout
        self._middlewares = list(middlewares)
        self._ssl = ssl_context
        self._serving = ServiceStatus()
        self._health = Health({handler: [self._serving] for handler in self._handlers})
        self._server = Server(
            [*self._handlers, self._health],
            codec=FastProtoCodec(),
            status_details_codec=ErrorDetailsCodec(),
        )
        listen(self._server, RecvRequest, self._on_request)
        self._connections: weakref.WeakSet[H2Protocol] = weakref.WeakSet()
        self._track_connections()
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._draining = False
        self.port = 0

    @property
    def address(self) -> str:
        return f"{self._host}:{self.port}"

    async def __aenter__(self) -> Self:
        await self._server.start(self._host, self._requested_port, ssl=self._ssl)
        sockets = self._listening_server().sockets
        self.port = int(sockets[0].getsockname()[1])
        self._serving.set(True)
        log.info("serving %s on %s", self.service, self.address)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.drain()
        self._server.close()
        await self._server.wait_closed()
        # grpclib leaves accepted connections open after close; a stopped
        # server must drop them so clients reconnect (or fail over) at once.
        for connection in list(self._connections):
            processor = getattr(connection, "processor", None)  # None: handshake failed
            if processor is not None:
                processor.close("server stopped")
        log.info("stopped %s", self.service)

    async def drain(self) -> None:
        """Stop taking work and wait (bounded) for in-flight calls to finish."""
        if self._draining:
            return
        self._draining = True
        self._serving.set(False)
        self._listening_server().close()
        try:
            await asyncio.wait_for(self._idle.wait(), self._drain_timeout)
        except TimeoutError:
            log.warning(
                "%s: %d call(s) still running after %.1fs drain; cancelling",
                self.service,
                self._inflight,
                self._drain_timeout,
            )

    def _track_connections(self) -> None:
        make_protocol = self._server._protocol_factory

        def tracked() -> H2Protocol:
            protocol = make_protocol()
            self._connections.add(protocol)
            return protocol

        self._server._protocol_factory = tracked  # type: ignore[method-assign]

    @property
    def serving(self) -> bool:
        """True while the server takes new calls (False once draining)."""
        return self.port != 0 and not self._draining

    def _listening_server(self) -> asyncio.Server:
        # grpclib keeps the asyncio server private; we need it to stop
        # accepting connections without cancelling the calls in flight.
        server: asyncio.Server = self._server._server  # type: ignore[attr-defined,assignment]
        return server

    async def _on_request(self, event: RecvRequest) -> None:
        if event.method_name.startswith("/grpc.health."):
            return
        method_func = event.method_func
        method = event.method_name
        deadline = event.deadline
        call_context = CallContext.from_metadata(event.metadata, deadline)
        peer_cert = event.peer.cert() if self._ssl is not None else None

        async def guarded(stream: Stream[Any, Any]) -> None:
            if self._draining:
                # "draining": the call did no work, so any client may retry it elsewhere
                raise GRPCError(
                    Status.UNAVAILABLE, f"{self.service} is shutting down", {"reason": "draining"}
                )
            self._inflight += 1
            self._idle.clear()
            try:
                with call_scope(call_context):
                    call = ServerCall(self.service, method, stream, peer_cert)
                    await self._run_chain(call, lambda: method_func(stream))
            except errors.ServiceError as exc:
                raise to_grpc_error(exc) from None
            except (GRPCError, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("%s %s failed", self.service, method)
                raise GRPCError(Status.INTERNAL, "internal error") from None
            finally:
                self._inflight -= 1
                if self._inflight == 0:
                    self._idle.set()

        event.method_func = guarded

    async def _run_chain(self, call: ServerCall, handler: Handler) -> None:
        chain = handler
        for middleware in reversed(self._middlewares):
            chain = _bind(middleware, call, chain)
        await chain()


def _bind(middleware: ServerMiddleware, call: ServerCall, inner: Handler) -> Handler:
    async def run() -> None:
        await middleware(call, inner)

    return run
