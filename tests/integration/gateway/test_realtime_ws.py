"""GET /api/v1/ws on a real gateway app in front of real user/product services.

Events enter through the app's fan-out (the in-process backend here; the
SQS and Redis backends have their own tests, the REST-to-push path its
end-to-end test).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from ec_recommend import client as api
from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend.client import Client
from ec_recommend.config import RealtimeConfig
from ec_recommend.edge.realtime.handler import REALTIME
from ec_recommend.edge.realtime.hub import SLOW_CLIENT
from ec_recommend.platform.events.envelope import Event, new_event
from tests.conftest import wait_for
from tests.integration.gateway.conftest import GatewayUnderTest, gateway_config, running_gateway

pytestmark = pytest.mark.asyncio

WS = "/api/v1/ws"


@pytest_asyncio.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayUnderTest]:
    realtime = RealtimeConfig(
        backend="local",
        connections_per_user=2,
        subscriptions_per_connection=3,
        send_queue=8,
        idle_timeout=30.0,
        max_message_bytes=1024,
    )
    async with running_gateway(replace(gateway_config(tmp_path), realtime=realtime)) as running:
        yield running


async def user_id(gw: GatewayUnderTest, token: str) -> str:
    response = await gw.http.get("/api/v1/users/me", headers=gw.auth(token))
    return str((await response.json())["id"])


def paid(owner: str) -> Event:
    order = pb_order.Order(id=str(uuid.uuid4()), user_id=owner, status="PAID", order_number="N-1")
    return new_event("order.paid", pb.OrderPaid(order=order), source="order")


async def publish(gw: GatewayUnderTest, event: Event) -> None:
    fanout = gw.app[REALTIME].fanout
    assert fanout is not None
    await fanout.publish(event)


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await ws.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    body: dict[str, Any] = message.json()
    return body


async def subscribe(
    ws: aiohttp.ClientWebSocketResponse, topic: str, **extra: str
) -> dict[str, Any]:
    await ws.send_json({"type": "subscribe", "topic": topic, **extra})
    return await receive(ws)


async def test_orders_reach_their_owner_and_nobody_else(gw: GatewayUnderTest) -> None:
    alice_id = await user_id(gw, "alice")
    async with (
        gw.http.ws_connect(WS, headers=gw.auth("alice")) as alice,
        gw.http.ws_connect(WS, headers=gw.auth("bob")) as bob,
    ):
        assert await subscribe(alice, "orders") == {"type": "subscribed", "topic": "orders"}
        assert await subscribe(bob, "orders") == {"type": "subscribed", "topic": "orders"}
        event = paid(alice_id)
        await publish(gw, event)
        pushed = await receive(alice)
        assert pushed["type"] == "order.status_changed" and pushed["data"]["status"] == "PAID"
        assert pushed["event_id"] == event.id and pushed["timestamp"]
        await bob.send_json({"type": "ping"})
        assert await receive(bob) == {"type": "pong"}  # nothing about alice's order first
    metrics = await (await gw.http.get("/metrics")).text()
    assert "ws_messages_sent_total" in metrics and "ws_connections_open" in metrics


async def test_browser_auth_as_first_message_and_anonymous_limits(gw: GatewayUnderTest) -> None:
    async with gw.http.ws_connect(WS) as browser:
        await browser.send_json({"type": "auth", "token": "alice"})
        assert (await receive(browser))["type"] == "authenticated"
        assert (await subscribe(browser, "orders"))["type"] == "subscribed"
        await browser.send_json({"type": "auth", "token": "bob"})
        assert (await receive(browser))["code"] == "CONFLICT"
    async with gw.http.ws_connect(WS) as anonymous:
        refused = await subscribe(anonymous, "orders")
        assert refused["type"] == "error" and refused["code"] == "UNAUTHORIZED"
        assert refused["details"] == {"topic": "orders"}
        product = f"product:{uuid.uuid4()}"
        assert await subscribe(anonymous, product) == {"type": "subscribed", "topic": product}
    # a token in the URL is not a credential
    async with gw.http.ws_connect(f"{WS}?token=alice&access_token=alice") as url_token:
        assert (await subscribe(url_token, "orders"))["code"] == "UNAUTHORIZED"


async def test_bad_tokens_are_refused(gw: GatewayUnderTest) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await gw.http.ws_connect(WS, headers=gw.auth("forged"))
    assert refused.value.status == 401
    async with gw.http.ws_connect(WS) as browser:
        await browser.send_json({"type": "auth", "token": "forged"})
        error = await receive(browser)
        assert error["type"] == "error" and error["code"] == "UNAUTHORIZED"
        closing = await browser.receive(timeout=5)
        assert closing.type == aiohttp.WSMsgType.CLOSE and browser.close_code == 1008


async def test_malformed_messages_get_errors_in_the_rest_shape(gw: GatewayUnderTest) -> None:
    async with gw.http.ws_connect(WS, headers=gw.auth("alice")) as ws:
        for bad in ("not json", "[1, 2]", '{"type": 5}', '{"type": "shout"}'):
            await ws.send_str(bad)
            error = await receive(ws)
            assert error["type"] == "error" and error["code"] == "INVALID_REQUEST", bad
            assert set(error) <= {"type", "code", "message", "details"}
        await ws.send_bytes(b"\x00\x01")
        assert (await receive(ws))["code"] == "INVALID_REQUEST"
        error = await subscribe(ws, "orders", last_event_id="x" * 300)
        assert error["details"] == {"field": "last_event_id"}
        error = await subscribe(ws, "product:../../etc")
        assert error["code"] == "INVALID_REQUEST"
        await ws.send_str('{"type": "ping", "pad": "' + "x" * 2000 + '"}')  # over 1 KiB
        closing = await ws.receive(timeout=5)
        assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1009


async def test_connections_per_user_and_subscriptions_are_limited(gw: GatewayUnderTest) -> None:
    async with (
        gw.http.ws_connect(WS, headers=gw.auth("alice")) as first,
        gw.http.ws_connect(WS, headers=gw.auth("alice")),
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await gw.http.ws_connect(WS, headers=gw.auth("alice"))
        assert refused.value.status == 429
        for _ in range(3):
            assert (await subscribe(first, f"product:{uuid.uuid4()}"))["type"] == "subscribed"
        error = await subscribe(first, f"product:{uuid.uuid4()}")
        assert error["code"] == "RATE_LIMITED" and error["details"] == {"limit": "3"}
    await wait_for(lambda: not gw.app[REALTIME].hub.connections)
    async with gw.http.ws_connect(WS, headers=gw.auth("alice")):
        pass  # the closed ones no longer count


async def test_resume_with_last_event_id_replays_missed_messages_once(
    gw: GatewayUnderTest,
) -> None:
    alice_id = await user_id(gw, "alice")
    first, missed = paid(alice_id), [paid(alice_id), paid(alice_id)]
    async with gw.http.ws_connect(WS, headers=gw.auth("alice")) as ws:
        await subscribe(ws, "orders")
        await publish(gw, first)
        last_seen = (await receive(ws))["event_id"]
    for event in missed:
        await publish(gw, event)
    async with gw.http.ws_connect(WS, headers=gw.auth("alice")) as ws:
        ack = await subscribe(ws, "orders", last_event_id=last_seen)
        assert ack == {"type": "subscribed", "topic": "orders", "resumed": True}
        assert [(await receive(ws))["event_id"] for _ in missed] == [e.id for e in missed]
        later = paid(alice_id)
        await publish(gw, missed[1])  # SQS may deliver it again: not pushed twice
        await publish(gw, later)
        assert (await receive(ws))["event_id"] == later.id


async def slow_disconnects(gw: GatewayUnderTest) -> float:
    text = await (await gw.http.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith("ws_slow_client_disconnects_total"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _raw_websocket(port: int) -> socket.socket:
    """A client that completes the handshake and then never reads."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET {WS} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return raw


async def test_a_client_that_never_reads_is_closed_at_its_queue_bound(
    gw: GatewayUnderTest,
) -> None:
    hub = gw.app[REALTIME].hub
    product_id = str(uuid.uuid4())
    port = gw.http.port
    assert port is not None
    before = await slow_disconnects(gw)
    raw = await asyncio.to_thread(_raw_websocket, port)
    try:
        await wait_for(lambda: len(hub.connections) == 1)
        connection = next(iter(hub.connections.values()))
        hub.subscribe(connection, f"product:{product_id}")
        big = "x" * 16_000
        for _ in range(5000):  # 80 MB if nothing stopped it
            update = pb.ProductUpdated(product_id=product_id, name=big, status="ACTIVE")
            await publish(gw, new_event("product.updated", update, source="product"))
            assert connection.pending <= hub.limits.send_queue  # memory stays bounded
            if connection.closing:
                break
            await asyncio.sleep(0.001)  # let the writer push into the socket
        assert connection.close_code == SLOW_CLIENT
        await wait_for(lambda: not hub.connections, timeout=10)
        assert await slow_disconnects(gw) == before + 1
    finally:
        raw.close()


async def test_idle_connections_are_closed(tmp_path: Path) -> None:
    config = replace(
        gateway_config(tmp_path), realtime=RealtimeConfig(backend="local", idle_timeout=0.3)
    )
    async with running_gateway(config) as gw, gw.http.ws_connect(WS) as ws:
        closing = await ws.receive(timeout=5)
        assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4000


async def test_shutdown_closes_sockets_with_going_away(tmp_path: Path) -> None:
    config = replace(gateway_config(tmp_path), realtime=RealtimeConfig(backend="local"))
    async with running_gateway(config) as gw:
        ws = await gw.http.ws_connect(WS, headers=gw.auth("alice"))
        await subscribe(ws, "orders")
        stopping = asyncio.create_task(gw.http.server.close())
        closing = await ws.receive(timeout=10)
        assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1001
        await ws.close()
        await stopping


async def test_a_client_that_stops_answering_pings_is_closed(tmp_path: Path) -> None:
    config = replace(
        gateway_config(tmp_path), realtime=RealtimeConfig(backend="local", heartbeat=0.2)
    )
    async with running_gateway(config) as gw:
        ws = await gw.http.ws_connect(WS, autoping=False)
        await subscribe(ws, "product:" + str(uuid.uuid4()))  # not idle, just silent
        ping = await ws.receive(timeout=5)
        assert ping.type == aiohttp.WSMsgType.PING  # the server asks...
        await wait_for(lambda: not gw.app[REALTIME].hub.connections, timeout=5)  # ...and gives up
        await ws.close()


async def test_the_client_resumes_where_it_left_off(gw: GatewayUnderTest) -> None:
    alice_id = await user_id(gw, "alice")
    url = str(gw.http.make_url("")).rstrip("/")
    async with Client(url, token="alice") as alice:
        async with alice.subscribe("orders") as messages:
            first = paid(alice_id)
            await publish(gw, first)
            assert (await messages.next(timeout=5))["event_id"] == first.id
            last = messages.last_event_id
        missed = [paid(alice_id), paid(alice_id)]
        for event in missed:
            await publish(gw, event)
        async with alice.subscribe("orders", last_event_id=last, auth="message") as messages:
            assert messages.resumed == {"orders": True}
            got = [await messages.next(timeout=5) for _ in missed]
            assert [m["event_id"] for m in got] == [e.id for e in missed]
            assert messages.last_event_id == missed[-1].id
        with pytest.raises(api.Unauthorized):
            async with Client(url).subscribe("orders"):
                pass
