"""The grpcio (``grpc.aio``) side of ``RpcServer``: sockets, HTTP/2 and TLS in C.

gRPC's C core accepts the connections, runs HTTP/2 and TLS, and hands each
call's request bytes to a generic handler here, which runs it through the
server's one pipeline (``RpcServer.serve``) on a ``LocalStream`` (what an
in-process call uses: request and reply as bytes): the request
is decoded by our codec, the reply encoded by it, and a failure's status and
error details (``grpc-status-details-bin``, see ``status.py``) leave as the
call's status and trailing metadata.

The caller's identity is the one the C core verified in the handshake
(STRICT: a certificate from our CA is required), read from the call's
``auth_context``. Health (grpc.health.v1 ``Check``) answers from the
server's own state, so a draining server says NOT_SERVING.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

import grpc
from grpclib.const import Handler as MethodHandler
from grpclib.const import Status
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpclib.metadata import Deadline
from multidict import MultiDict

from ec_recommend.platform.rpc.local import LocalStream
from ec_recommend.platform.rpc.status import DETAILS_KEY, ErrorDetailsCodec
from ec_recommend.platform.security.certs import SPIFFE_PREFIX
from ec_recommend.platform.security.tls import ServerContext

log = logging.getLogger(__name__)

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# grpc.aio's defaults that differ from what our servers promise: no second
# server on the same port (SO_REUSEPORT), and no message size limit (as grpclib).
SERVER_OPTIONS = (
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
)

_CODES = {code.value[0]: code for code in grpc.StatusCode}
_PEERS_KEPT = 4096
_DETAILS = ErrorDetailsCodec()
_SERVING: bytes = HealthCheckResponse(status=HealthCheckResponse.SERVING).SerializeToString()
_NOT_SERVING: bytes = HealthCheckResponse(
    status=HealthCheckResponse.NOT_SERVING
).SerializeToString()

Serve = Callable[[str, Callable[[Any], Awaitable[None]], Any, "str | None"], Awaitable[None]]


def target(host: str, port: int) -> str:
    """``host:port`` as grpc parses it (an IPv6 address in brackets)."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def server_credentials(context: ssl.SSLContext | None) -> grpc.ServerCredentials | None:
    """grpcio's credentials for what ``context`` serves; None: grpcio cannot serve it.

    Only a STRICT context built by ``server_context`` qualifies: it knows its
    PEM files. grpcio's Python API either requires a verified client
    certificate or asks for none, so PERMISSIVE (ask, verify if given,
    admit without) stays with grpclib.
    """
    if not isinstance(context, ServerContext) or context.verify_mode != ssl.CERT_REQUIRED:
        return None
    ca, cert, key = context.pem()
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )


_SPIFFE = SPIFFE_PREFIX.encode()


def _caller(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """The service the verified client certificate names (as ``peer_service``)."""
    # The certificate's subject alternative names, cheap to read (the whole
    # auth_context costs ~10x more); ours carry the SPIFFE ID among them.
    for name in context.peer_identities() or ():
        if name.startswith(_SPIFFE):
            return str(name[len(_SPIFFE) :].decode())
    auth = context.auth_context()
    for uri in auth.get("peer_uri", ()):
        text = str(uri.decode())
        if text.startswith(SPIFFE_PREFIX):
            return text.removeprefix(SPIFFE_PREFIX)
    for name in auth.get("x509_common_name", ()):
        return str(name.decode())
    return None


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: GRPCError) -> NoReturn:
    trailing: tuple[tuple[str, str | bytes], ...] = ()
    if error.details is not None:
        data = _DETAILS.encode(error.status, error.message, error.details)
        trailing = ((DETAILS_KEY, data),)
    await context.abort(_CODES[error.status.value], error.message or "", trailing)
    raise AssertionError("abort returned")  # grpc.aio's abort always raises


class _Routes(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc is untyped
    def __init__(self, handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        self._handlers = dict(handlers)

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        return self._handlers.get(handler_call_details.method)  # type: ignore[attr-defined]


class AioServer:
    """A ``grpc.aio`` server for the methods of one ``RpcServer``."""

    def __init__(
        self,
        methods: Mapping[str, MethodHandler],
        codec: CodecBase,
        serve: Serve,
        serving: Callable[[], bool],
        credentials: grpc.ServerCredentials | None,
    ) -> None:
        self._codec = codec
        self._serve = serve
        self._serving = serving
        self._credentials = credentials
        self._server: grpc.aio.Server | None = None
        # peer addresses seen (a connection each); bounded, see _seen
        self._peers: set[str] = set()
        self._connections = 0
        handlers = {
            route: grpc.unary_unary_rpc_method_handler(self._served(route, entry))
            for route, entry in methods.items()
        }
        handlers[HEALTH_CHECK] = grpc.unary_unary_rpc_method_handler(self._check)
        self._routes = _Routes(handlers)
        # grpc.health.v1 names: "" (the whole server) and each gRPC service
        self._health_names = {""} | {route.split("/")[1] for route in methods}

    @property
    def connections_seen(self) -> int:
        """Client connections that made a call (the C core does not report accepts).

        Exact up to ``_PEERS_KEPT`` connections; past that, a connection still
        open when the record is reset is counted again.
        """
        return self._connections

    def _seen(self, peer: str) -> None:
        if peer not in self._peers:
            if len(self._peers) >= _PEERS_KEPT:
                self._peers.clear()
            self._peers.add(peer)
            self._connections += 1

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: ephemeral); returns the port."""
        server = grpc.aio.server(options=SERVER_OPTIONS)
        server.add_generic_rpc_handlers((self._routes,))
        address = target(host, port)
        try:
            if self._credentials is None:
                bound = server.add_insecure_port(address)
            else:
                bound = server.add_secure_port(address, self._credentials)
        except RuntimeError as exc:  # grpcio's word for "address in use"
            raise OSError(f"cannot listen on {address}: {exc}") from None
        await server.start()
        self._server = server
        return int(bound)

    async def stop(self) -> None:
        """Close the listener and every connection; calls still running are cancelled."""
        if self._server is not None:
            await self._server.stop(None)
            self._server = None

    def _served(self, route: str, entry: MethodHandler) -> Callable[..., Awaitable[bytes]]:
        func, request_type, reply_type = entry.func, entry.request_type, entry.reply_type
        codec, serve, seen = self._codec, self._serve, self._seen
        identify = self._credentials is not None

        async def served(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            seen(context.peer())
            remaining = context.time_remaining()
            stream = LocalStream(
                codec,
                request,
                request_type,
                reply_type,
                MultiDict(context.invocation_metadata() or ()),
                None if remaining is None else Deadline.from_timeout(remaining),
            )
            try:
                await serve(route, func, stream, _caller(context) if identify else None)
            except GRPCError as exc:
                await _abort(context, exc)
            reply = stream.reply
            if reply is None:
                await _abort(context, GRPCError(Status.INTERNAL, "no response"))
            return reply

        return served

    async def _check(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        service = HealthCheckRequest.FromString(request).service
        if service not in self._health_names:
            await _abort(context, GRPCError(Status.NOT_FOUND))
        return _SERVING if self._serving() else _NOT_SERVING
