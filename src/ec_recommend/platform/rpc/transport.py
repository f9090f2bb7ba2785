"""One write per connection per event-loop turn, for grpclib's HTTP/2 connections.

grpclib hands the transport whatever h2 has to send after every step of a
call: headers, then data, then trailers, each its own ``write`` (a send
system call; under TLS also a TLS record of its own, encrypted on its own).
A unary reply costs three of each, a request two. ``CoalescingTransport``
collects the writes made during one turn of the event loop and sends them
together at the end of it, in order: with many calls in flight on a
connection, dozens of frames share one system call and one TLS record.

The bytes and their order are unchanged; only when they leave moves, to the
end of the current loop turn (no timer, no added wait).
"""

from __future__ import annotations

import asyncio
from typing import Any

from grpclib.client import Channel
from grpclib.protocol import H2Protocol


class CoalescingTransport:
    """Wraps a transport: ``write`` buffers until the loop turn ends."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        """Send what this turn wrote (also called before closing)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if self._transport.is_closing():
            return  # the connection is gone; so is what was left to send
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        # everything else (get_extra_info, is_closing, pause_reading, ...) as is
        return getattr(self._transport, name)


def coalesce_writes(protocol: H2Protocol) -> H2Protocol:
    """``protocol``, sending through a ``CoalescingTransport`` once connected."""
    made = protocol.connection_made

    def connection_made(transport: asyncio.BaseTransport) -> None:
        made(transport)
        # grpclib's Connection writes through ``_transport``, and so do the
        # streams it creates (they take it from the connection).
        connection = protocol.connection
        connection._transport = CoalescingTransport(connection._transport)  # type: ignore[assignment]

    protocol.connection_made = connection_made  # type: ignore[method-assign]
    return protocol


class CoalescingChannel(Channel):
    """grpclib's client channel, its connections sending through ``CoalescingTransport``."""

    def _protocol_factory(self) -> H2Protocol:
        return coalesce_writes(super()._protocol_factory())
