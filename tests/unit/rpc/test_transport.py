"""Writes of one event-loop turn leave a connection together, in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ec_recommend.platform.rpc.transport import CoalescingTransport

pytestmark = pytest.mark.asyncio


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name)


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_the_writes_of_one_turn_go_out_as_one_in_order() -> None:
    fake = FakeTransport()
    transport = CoalescingTransport(fake)  # type: ignore[arg-type]
    transport.write(b"headers")
    transport.write(bytearray(b"data"))
    transport.write(b"")
    transport.write(b"trailers")
    assert fake.written == []
    await next_turn()
    assert fake.written == [b"headersdatatrailers"]
    transport.write(b"next")
    await next_turn()
    assert fake.written == [b"headersdatatrailers", b"next"]


async def test_closing_sends_what_is_pending_first() -> None:
    fake = FakeTransport()
    transport = CoalescingTransport(fake)  # type: ignore[arg-type]
    transport.write(b"goaway")
    transport.close()
    assert (fake.written, fake.closed) == ([b"goaway"], True)
    await next_turn()  # the scheduled flush finds nothing left
    assert fake.written == [b"goaway"]


async def test_what_is_pending_when_the_connection_is_lost_is_dropped() -> None:
    fake = FakeTransport()
    transport = CoalescingTransport(fake)  # type: ignore[arg-type]
    transport.write(b"late")
    fake.closed = True
    await next_turn()
    assert fake.written == []


async def test_everything_else_is_the_transports() -> None:
    fake = FakeTransport()
    transport = CoalescingTransport(fake)  # type: ignore[arg-type]
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
    assert transport.is_closing() is False
