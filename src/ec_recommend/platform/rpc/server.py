"""One gRPC server per service: health, call context, error translation,
graceful drain.

Shutdown drains before it closes: health turns NOT_SERVING, the listening
socket stops accepting, requests arriving on open connections get
UNAVAILABLE (so a client retries elsewhere), and in-flight requests get up to
``drain_timeout`` to finish before whatever is left is cancelled.

Every call, whether it came over a socket or from a client in this process
(``call_local``, see ``local.py``), runs through the one pipeline of
``serve``: drain check, call context, the middlewares (telemetry, the
allow-list by caller identity), error translation to a status.

Calls between processes arrive through one of two transports
(``transports.py``): grpcio (``aio_server.py``, the default) or grpclib.
Under grpcio the listener stays open while draining (grpc.aio cannot close
it without closing the connections): new connections are accepted, but
their calls get the same UNAVAILABLE (draining) and health NOT_SERVING.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Self

from grpclib.const import Handler as MethodHandler
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.health.check import ServiceStatus
from grpclib.health.service import Health
from grpclib.metadata import Deadline
from grpclib.protocol import H2Protocol
from grpclib.server import Server, Stream

from ec_recommend.platform import errors
from ec_recommend.platform.rpc import transports
from ec_recommend.platform.rpc.aio_server import AioServer, server_credentials
from ec_recommend.platform.rpc.codec import FastProtoCodec
from ec_recommend.platform.rpc.context import CallContext, call_scope
from ec_recommend.platform.rpc.local import LocalStream, wire_error, wire_metadata
from ec_recommend.platform.rpc.status import ErrorDetailsCodec, to_grpc_error
from ec_recommend.platform.rpc.transport import coalesce_writes
from ec_recommend.platform.security.tls import PeerIdentities

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerCall:
    """What middleware sees of an incoming call."""

    service: str
    method: str  # full gRPC path, e.g. /ecommerce.product.ProductService/GetProduct
    stream: Stream[Any, Any] | LocalStream
    # the caller's service identity, as its certificate names it (None: TLS
    # off, or a PERMISSIVE caller without a certificate)
    caller: str | None


Handler = Callable[[], Awaitable[None]]
ServerMiddleware = Callable[[ServerCall, Handler], Awaitable[None]]
MethodFunc = Callable[[Any], Awaitable[None]]


class _Served:
    """A grpclib handler whose methods all run through ``RpcServer.serve``."""

    def __init__(self, mapping: Mapping[str, MethodHandler]) -> None:
        self._mapping = dict(mapping)

    def __mapping__(self) -> dict[str, MethodHandler]:
        return self._mapping


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
        transport: str | None = None,
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
        # route -> the service's own method; both transports look calls up here
        self.methods: dict[str, MethodHandler] = {}
        for handler in self._handlers:
            self.methods.update(handler.__mapping__())
        served = _Served(
            {
                route: MethodHandler(
                    self._from_socket(route, method.func),
                    method.cardinality,
                    method.request_type,
                    method.reply_type,
                )
                for route, method in self.methods.items()
            }
        )
        self.codec = FastProtoCodec()
        self._server = Server(
            [served, self._health], codec=self.codec, status_details_codec=ErrorDetailsCodec()
        )
        self._aio: AioServer | None = None
        self.transport = transports.resolve(transport)
        if self.transport == "grpcio":
            credentials = server_credentials(ssl_context)
            if ssl_context is not None and credentials is None:
                # PERMISSIVE (or a context not from server_context): see transports.py
                log.info("%s: served by grpclib (grpcio cannot serve this TLS mode)", service)
                self.transport = "grpclib"
            else:
                self._aio = AioServer(
                    self.methods, self.codec, self.serve, lambda: self.serving, credentials
                )
        self._peers = PeerIdentities()
        self._local_calls: set[asyncio.Task[None]] = set()
        # what the server's own calls run in: a copy of the context it started in
        self._context = contextvars.copy_context()
        self._connections: weakref.WeakSet[H2Protocol] = weakref.WeakSet()
        self._accepted = 0
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
        # Calls over sockets run in copies of the context the listener started
        # in (asyncio captures it); in-process calls get the same.
        self._context = contextvars.copy_context()
        if self._aio is not None:
            self.port = await self._aio.start(self._host, self._requested_port)
        else:
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
        if self._aio is not None:
            await self._aio.stop()  # closes its connections too
        else:
            await self._stop_grpclib()
        for task in list(self._local_calls):
            task.cancel()
        log.info("stopped %s", self.service)

    async def _stop_grpclib(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        # grpclib leaves accepted connections open after close; a stopped
        # server must drop them so clients reconnect (or fail over) at once.
        for connection in list(self._connections):
            processor = getattr(connection, "processor", None)  # None: handshake failed
            if processor is not None:
                processor.close("server stopped")

    @property
    def connections_accepted(self) -> int:
        """Connections clients opened to this server (in-process calls open none)."""
        if self._aio is not None:
            return self._aio.connections_seen
        return self._accepted

    async def drain(self) -> None:
        """Stop taking work and wait (bounded) for in-flight calls to finish."""
        if self._draining:
            return
        self._draining = True
        self._serving.set(False)
        if self._aio is None:
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
            protocol = coalesce_writes(make_protocol())
            self._connections.add(protocol)
            self._accepted += 1
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

    def _from_socket(self, method: str, func: MethodFunc) -> MethodFunc:
        """``func`` as grpclib calls it for a request that came over a connection."""

        async def served(stream: Stream[Any, Any]) -> None:
            caller = None
            if self._ssl is not None:
                # grpclib's Peer.cert() would decode the certificate on every call
                caller = self._peers.of(stream.peer._transport.get_extra_info("ssl_object"))
            await self.serve(method, func, stream, caller)

        return served

    async def serve(
        self,
        method: str,
        func: MethodFunc,
        stream: Stream[Any, Any] | LocalStream,
        caller: str | None,
    ) -> None:
        """Run one call of ``method`` (``func``, the service's own) for ``caller``.

        Raises GRPCError for every failure: the status the client receives.
        """
        if self._draining:
            # "draining": the call did no work, so any client may retry it elsewhere
            raise GRPCError(
                Status.UNAVAILABLE, f"{self.service} is shutting down", {"reason": "draining"}
            )
        self._inflight += 1
        self._idle.clear()
        try:
            with call_scope(CallContext.from_metadata(stream.metadata or (), stream.deadline)):
                handler: Handler = partial(func, stream)
                if self._middlewares:
                    call = ServerCall(self.service, method, stream, caller)
                    # partials, not closures: no coroutine frame of their own
                    for middleware in reversed(self._middlewares):
                        handler = partial(middleware, call, handler)
                await handler()
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

    async def call_local(
        self,
        method: str,
        request: bytes,
        metadata: Sequence[tuple[str, str | bytes]],
        deadline: Deadline | None,
        caller: str | None,
    ) -> bytes | None:
        """One call from a client in this process: ``request`` encoded, the reply encoded.

        Like a call over a socket, it runs in its own task, in a copy of the
        server's context (nothing of the caller's leaks in but what travels
        as metadata), is cancelled with its caller, and ends at ``deadline``
        with DEADLINE_EXCEEDED. Failures raise GRPCError.
        """
        entry = self.methods.get(method)
        if entry is None:
            raise GRPCError(Status.UNIMPLEMENTED, "Method not found")
        stream = LocalStream(
            self.codec,
            request,
            entry.request_type,
            entry.reply_type,
            wire_metadata(metadata),
            deadline,
        )
        loop = asyncio.get_running_loop()
        task = loop.create_task(
            self.serve(method, entry.func, stream, caller), context=self._context.copy()
        )
        self._local_calls.add(task)
        task.add_done_callback(self._local_calls.discard)
        # the deadline cancels the call's task, as asyncio.timeout inside it
        # would, for less than that costs on every call
        expiry = timer = None
        if deadline is not None:
            expiry = _Expiry(task)
            timer = loop.call_later(deadline.time_remaining(), expiry)
        try:
            await task
        except GRPCError as exc:
            raise wire_error(exc) from None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller was cancelled (and the call with it)
            if expiry is not None and expiry.fired:
                # as grpclib's server answers a call that ran past its deadline
                raise GRPCError(Status.DEADLINE_EXCEEDED) from None
            # the server stopped and cancelled the call, as closing a connection does
            raise GRPCError(Status.UNAVAILABLE, f"{self.service} stopped") from None
        finally:
            if timer is not None:
                timer.cancel()
        return stream.reply


class _Expiry:
    """Cancels an in-process call's task at its deadline, and remembers having done so."""

    __slots__ = ("_task", "fired")

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task
        self.fired = False

    def __call__(self) -> None:
        self.fired = self._task.cancel()  # False: it had ended
