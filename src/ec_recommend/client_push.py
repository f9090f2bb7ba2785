"""The push side of the client: ``Client.subscribe()`` over ``/api/v1/ws``.

    async with api.subscribe("orders", f"product:{product_id}") as messages:
        async for message in messages:        # dicts: {"type", "event_id", ...}
            ...
        await messages.next(timeout=5)        # or one at a time

The token goes in the ``Authorization`` header (or, with
``auth="message"``, as the first message, as browsers must). Subscription
acks are awaited on entry; a refused topic raises the ``ApiError`` of its
code. ``last_event_id`` follows what was received, for resuming elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

import aiohttp

from ec_recommend.client_errors import ERRORS, ApiError

JSON = dict[str, Any]
WS_PATH = "/api/v1/ws"
_CONTROL = frozenset({"subscribed", "unsubscribed", "authenticated", "pong"})


class Caller(Protocol):
    """What a subscription needs of its ``Client``: where, and as whom (read when it opens).

    A protocol, so this module does not import the client that imports it.
    """

    @property
    def base_url(self) -> str: ...

    @property
    def token(self) -> str | None: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


class PushSubscription:
    """An open WebSocket following ``topics``; iterate for pushed messages."""

    def __init__(
        self,
        client: Caller,
        topics: Sequence[str],
        *,
        last_event_id: str | None = None,
        auth: str = "header",
        timeout: float = 10.0,
    ) -> None:
        if auth not in ("header", "message"):
            raise ValueError("auth: 'header' or 'message'")
        self.client = client
        self.topics = tuple(topics)
        self.last_event_id = last_event_id
        self.auth = auth
        self.timeout = timeout
        self.resumed: dict[str, bool] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code if self._ws is not None else None

    async def __aenter__(self) -> Self:
        try:
            await self.open()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        headers = dict(self.client.headers)
        if self.client.token and self.auth == "header":
            headers["Authorization"] = f"Bearer {self.client.token}"
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await self._session.ws_connect(
                self.client.base_url.rstrip("/") + WS_PATH, headers=headers, heartbeat=None
            )
        except aiohttp.WSServerHandshakeError as exc:
            await self.close()
            raise ERRORS.get(_code_of(exc.status), ApiError)(exc.status, exc.message) from None
        if self.client.token and self.auth == "message":
            await self._ws.send_json({"type": "auth", "token": self.client.token})
            await self._expect("authenticated")
        for topic in self.topics:
            await self.subscribe(topic, last_event_id=self.last_event_id)

    async def subscribe(self, topic: str, *, last_event_id: str | None = None) -> None:
        message: JSON = {"type": "subscribe", "topic": topic}
        if last_event_id is not None:
            message["last_event_id"] = last_event_id
        await self._socket().send_json(message)
        ack = await self._expect("subscribed")
        if "resumed" in ack:
            self.resumed[str(ack.get("topic"))] = bool(ack["resumed"])

    async def unsubscribe(self, topic: str) -> None:
        await self._socket().send_json({"type": "unsubscribe", "topic": topic})
        await self._expect("unsubscribed")

    async def _expect(self, kind: str) -> JSON:
        message = await self._receive(self.timeout)
        if message is None:
            raise ConnectionError(f"the server closed the socket ({self.close_code})")
        if message.get("type") == "error":
            raise _error(message)
        if message.get("type") != kind:
            raise ConnectionError(f"expected {kind}, got {message.get('type')}")
        return message

    async def next(self, timeout: float | None = None) -> JSON:
        """The next pushed message (error messages included).

        TimeoutError if none comes in time; ConnectionError once the socket is closed.
        """
        while True:
            message = await self._receive(timeout)
            if message is None:
                raise ConnectionError(f"the server closed the socket ({self.close_code})")
            if message.get("type") in _CONTROL:
                continue
            if isinstance(message.get("event_id"), str):
                self.last_event_id = message["event_id"]
            return message

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> JSON:
        try:
            return await self.next()
        except ConnectionError:
            raise StopAsyncIteration from None

    async def _receive(self, timeout: float | None) -> JSON | None:
        ws = self._socket()
        message = await asyncio.wait_for(ws.receive(), timeout)
        if message.type != aiohttp.WSMsgType.TEXT:
            return None
        body: JSON = message.json()
        return body

    def _socket(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is None:
            raise RuntimeError("not connected: use 'async with client.subscribe(...)'")
        return self._ws

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _code_of(status: int) -> str:
    return {
        400: "INVALID_REQUEST",
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        429: "RATE_LIMITED",
        503: "SERVICE_UNAVAILABLE",
    }.get(status, "INTERNAL_ERROR")


def _error(message: Mapping[str, Any]) -> Exception:
    code = str(message.get("code", "UNKNOWN"))
    details = message.get("details") or {}
    return ERRORS.get(code, ApiError)(0, str(message.get("message", "")), details, code=code)
