"""``GET /api/v1/ws``: one WebSocket, its reader, its writer and its closing.

Protocol (JSON text frames, each with a ``type``):

client -> server
    ``auth {token}``            only as the first message, when no
                                ``Authorization`` header was sent (browsers)
    ``subscribe {topic, last_event_id?}``   ``orders`` | ``product:<id>``
    ``unsubscribe {topic}``
    ``ping``
server -> client
    ``authenticated``, ``subscribed {topic, resumed?}``, ``unsubscribed``,
    ``pong``, ``order.status_changed``, ``product.updated``,
    ``product.out_of_stock`` (each with ``event_id`` and ``timestamp``),
    ``error {code, message, details?}`` (the REST error shape).

Tokens never travel in the URL. A connection that follows nothing for
``idle_timeout`` is closed (4000); one whose send queue fills is closed as a
slow client (4008); one whose token expires is closed with 4401; shutdown
closes every socket with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from ec_recommend.edge.gateway.identity import bearer_token
from ec_recommend.edge.gateway.keys import GATEWAY, IDENTITY, REQUEST_ID
from ec_recommend.edge.realtime.expiry import close_at_expiry
from ec_recommend.edge.realtime.fanout import Fanout
from ec_recommend.edge.realtime.hub import (
    IDLE,
    POLICY_VIOLATION,
    Connection,
    Hub,
)
from ec_recommend.edge.realtime.messages import error_frame, frame
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import Identity

log = logging.getLogger(__name__)

Resolve = Callable[[str, str], Awaitable[Identity]]
_DONE = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
_MAX_EVENT_ID = 256
INTERNAL_ERROR = 1011


@dataclass(frozen=True)
class SocketSettings:
    heartbeat: float = 20.0  # ping interval; no pong within half of it closes
    idle_timeout: float = 60.0
    close_timeout: float = 2.0
    max_message_bytes: int = 4096


@dataclass
class Realtime:
    """What the endpoint needs: the hub, how sockets behave, where events come from."""

    hub: Hub
    settings: SocketSettings
    fanout: Fanout | None = None


REALTIME = web.AppKey("ec_realtime", Realtime)


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    realtime = request.app[REALTIME]
    hub, settings = realtime.hub, realtime.settings
    identity = request.get(IDENTITY)
    token = bearer_token(request.headers.get("Authorization"))
    if identity is None and token is not None:
        # the policy middleware did not cover this path: verify here
        identity = await _resolver(request)(token, request.get(REQUEST_ID, ""))
    # refused before the upgrade, as an HTTP error in the REST shape
    connection = hub.register(identity.user_id if identity is not None else None)
    if identity is not None and token is not None:
        connection.expiry = close_at_expiry(connection, token)
    try:
        ws = web.WebSocketResponse(
            heartbeat=settings.heartbeat,
            max_msg_size=settings.max_message_bytes,
            timeout=settings.close_timeout,
        )
        await ws.prepare(request)
        writer = asyncio.create_task(_write(ws, connection, hub))
        done_reading = asyncio.Event()
        closer = asyncio.create_task(
            _close_when_asked(ws, connection, writer, done_reading, request, settings)
        )
        try:
            await _read(ws, connection, hub, settings, request)
        finally:
            done_reading.set()
            connection.close(1000, "")
            await closer
        return ws
    finally:
        if connection.expiry is not None:
            connection.expiry.cancel()
        hub.unregister(connection)


def _resolver(request: web.Request) -> Resolve:
    return request.app[GATEWAY].identities.resolve


async def _write(ws: web.WebSocketResponse, connection: Connection, hub: Hub) -> None:
    while True:
        frames = await connection.take()
        if not frames:
            return
        for data in frames:
            await ws.send_frame(data, WSMsgType.TEXT)
        hub.metrics.sent(len(frames))


async def _close_when_asked(
    ws: web.WebSocketResponse,
    connection: Connection,
    writer: asyncio.Task[None],
    reading: asyncio.Event,
    request: web.Request,
    settings: SocketSettings,
) -> None:
    """Close the socket once the connection is closing, whoever asked.

    ``reading`` is set once the reader has returned.
    """
    asked = asyncio.create_task(connection.wait_closing())
    await asyncio.wait({writer, asked}, return_when=asyncio.FIRST_COMPLETED)
    asked.cancel()
    if not connection.closing:
        # the writer failed (socket gone): stop the reader as well
        connection.close(1000, "")
    if connection.drains:
        await asyncio.wait({writer}, timeout=settings.close_timeout)
    # a writer stuck on a client that reads nothing is abandoned here
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await writer
    if not ws.closed:
        # not wait_for: aiohttp's close outlives a cancellation while the socket is full
        closing = asyncio.create_task(
            ws.close(code=connection.close_code or 1000, message=_reason(connection))
        )
        await asyncio.wait({closing}, timeout=settings.close_timeout)
        if not closing.done():
            _abort(request)  # a client that reads nothing cannot take the close frame
            await asyncio.wait({closing}, timeout=settings.close_timeout)
            closing.cancel()
    # a reader still waiting on a client that went quiet: cut the connection
    read_done = asyncio.create_task(reading.wait())
    await asyncio.wait({read_done}, timeout=settings.close_timeout)
    read_done.cancel()
    if not reading.is_set():
        _abort(request)


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def _reason(connection: Connection) -> bytes:
    return connection.close_reason.encode()[:120]


async def _read(
    ws: web.WebSocketResponse,
    connection: Connection,
    hub: Hub,
    settings: SocketSettings,
    request: web.Request,
) -> None:
    first = True
    while not connection.closing:
        try:
            message = await ws.receive(timeout=settings.idle_timeout)
        except TimeoutError:
            if not connection.topics:
                connection.close(IDLE, "idle: nothing subscribed")
                return
            continue
        if message.type in _DONE or connection.closing:
            return
        kind = ""
        try:
            if message.type != WSMsgType.TEXT:
                raise errors.InvalidArgument("messages are JSON text frames")
            parsed = _parse(message.data)
            kind = parsed["type"]
            await _handle(parsed, connection, hub, request, first=first)
        except errors.ServiceError as exc:
            hub.send(connection, error_frame(exc))
            if kind == "auth" and isinstance(exc, errors.Unauthenticated):
                # no second guess on the same socket
                connection.close(POLICY_VIOLATION, "authentication failed", drain=True)
                return
        except Exception:
            log.exception("realtime: failed handling a %r message", kind)
            hub.send(connection, error_frame(errors.Internal("unexpected")))
            connection.close(INTERNAL_ERROR, "internal error", drain=True)
            return
        first = False


def _parse(data: str) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise errors.InvalidArgument("not valid JSON") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
        raise errors.InvalidArgument("expected a JSON object with a type", field="type")
    return parsed


async def _handle(
    message: dict[str, Any], connection: Connection, hub: Hub, request: web.Request, *, first: bool
) -> None:
    kind = message["type"]
    if kind == "subscribe":
        last = message.get("last_event_id")
        if last is not None and (not isinstance(last, str) or not 0 < len(last) <= _MAX_EVENT_ID):
            raise errors.InvalidArgument(
                "last_event_id: expected an event id", field="last_event_id"
            )
        hub.subscribe(connection, message.get("topic"), last)
    elif kind == "unsubscribe":
        hub.unsubscribe(connection, message.get("topic"))
    elif kind == "ping":
        hub.send(connection, frame("pong"))
    elif kind == "auth":
        if connection.user_id is not None:
            raise errors.FailedPrecondition("this connection is already authenticated")
        if not first:
            raise errors.FailedPrecondition("auth must be the first message")
        token = message.get("token")
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise errors.Unauthenticated("auth: expected a token")
        identity = await _resolver(request)(token, request.get(REQUEST_ID, ""))
        hub.authenticate(connection, identity.user_id)
        connection.expiry = close_at_expiry(connection, token)
        hub.send(connection, frame("authenticated", user_id=identity.user_id))
    else:
        raise errors.InvalidArgument(
            "type: expected auth, subscribe, unsubscribe or ping", field="type"
        )
