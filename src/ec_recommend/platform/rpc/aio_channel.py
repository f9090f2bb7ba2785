"""The grpcio (``grpc.aio``) side of the client: one channel per endpoint and identity.

``AioChannel`` is a grpclib ``Channel`` (so health checks and any grpclib
stub still work on it, over a grpclib connection opened only if they are
used) that carries the invoker's unary calls over a ``grpc.aio`` channel:
HTTP/2 and TLS in gRPC's C core, the request and the reply as bytes our
codec makes and reads.

grpc.aio's own policies are turned off or narrowed where ours decide:
no built-in retries (ours retry, by method and budget); a connection of
its own per channel (grpc shares one per address across channels, which
would make ``pool_size`` channels one connection); a try on a channel
whose last connection attempt failed reconnects at once, on a fresh
channel, as grpclib does, rather than waiting out grpc's reconnect backoff
(the breaker and outlier ejection decide when an endpoint is tried); no
message size limit (as grpclib).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from ec_recommend.platform.rpc.aio_server import target
from ec_recommend.platform.rpc.status import DETAILS_KEY, ErrorDetailsCodec
from ec_recommend.platform.rpc.transport import CoalescingChannel

CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.enable_retries", 0),
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
)

_STATUS = {status.value: status for status in Status}
_DETAILS = ErrorDetailsCodec()
_READY = grpc.ChannelConnectivity.READY
_FAILED = grpc.ChannelConnectivity.TRANSIENT_FAILURE
_SHUTDOWN = grpc.ChannelConnectivity.SHUTDOWN


class Unreachable(Exception):
    """The channel could not connect (nothing was sent)."""


class AioChannel(CoalescingChannel):
    """A grpclib channel whose unary calls from the invoker go through grpc.aio."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        credentials: grpc.ChannelCredentials | None,
        target_name: str | None,
        **grpclib: Any,
    ) -> None:
        super().__init__(host, port, **grpclib)
        self._address = target(host, port)
        self._credentials = credentials
        options = CHANNEL_OPTIONS
        if target_name is not None:
            # the server must prove it is this service, whatever its address
            options += (("grpc.ssl_target_name_override", target_name),)
        self._options = options
        self._aio: grpc.aio.Channel | None = None
        self._calls: dict[str, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def _channel(self) -> grpc.aio.Channel:
        # made on first use, inside the running loop grpc.aio binds to
        if self._aio is None:
            if self._credentials is None:
                self._aio = grpc.aio.insecure_channel(self._address, options=self._options)
            else:
                self._aio = grpc.aio.secure_channel(
                    self._address, self._credentials, options=self._options
                )
        return self._aio

    @property
    def ready(self) -> bool:
        """Connected (the hot path); else ``connect`` first."""
        return self._aio is not None and self._aio.get_state() is _READY

    async def connect(self) -> None:
        """Connect, or raise ``Unreachable`` once an attempt has failed."""
        channel = self._channel()
        state = channel.get_state(try_to_connect=True)
        if state is _FAILED:
            # the last attempt failed: try again now, not after grpc's backoff
            self._discard()
            channel = self._channel()
            state = channel.get_state(try_to_connect=True)
        while state is not _READY:
            if state is _FAILED or state is _SHUTDOWN:
                raise Unreachable(f"cannot connect to {self._address}")
            await channel.wait_for_state_change(state)
            state = channel.get_state(try_to_connect=True)

    async def unary(
        self,
        route: str,
        request: bytes,
        metadata: Sequence[tuple[str, str | bytes]],
        timeout: float,
    ) -> bytes:
        """One unary call; a failed one raises GRPCError with its details decoded."""
        call = self._calls.get(route)
        if call is None:
            call = self._calls[route] = self._channel().unary_unary(route)
        try:
            reply: bytes = await call(request, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise grpc_error(exc) from None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller was cancelled (and the call with it)
            # grpc.aio cancels the calls of a channel being closed; to the caller
            # that is a connection lost mid-call, as with grpclib
            raise GRPCError(Status.UNAVAILABLE, "channel closed") from None
        return reply

    def _discard(self) -> None:
        if self._aio is not None:
            closing = asyncio.get_running_loop().create_task(self._aio.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)  # reconnects leave none behind
            self._aio = None
            self._calls.clear()

    def close(self) -> None:
        super().close()
        self._discard()

    async def wait_closed(self) -> None:
        if self._closing:
            await asyncio.gather(*self._closing)


def grpc_error(exc: grpc.aio.AioRpcError) -> GRPCError:
    """``exc`` as grpclib raises a failed call: status, message, decoded details."""
    status = _STATUS.get(exc.code().value[0], Status.UNKNOWN)
    message = exc.details() or None
    if status is Status.CANCELLED:
        # Only the server ends a call this way here (ours raise CancelledError):
        # a stopping server cancels the calls no handler has taken yet. To the
        # caller that is a connection lost mid-call, as a reset stream is with
        # grpclib: UNAVAILABLE, and a write is not retried.
        return GRPCError(Status.UNAVAILABLE, f"the server cancelled the call: {message}")
    details = None
    for key, value in exc.trailing_metadata() or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            details = _DETAILS.decode(status, message, value)
    return GRPCError(status, message, details)
