"""Connections, their subscriptions and bounded send queues, and replay rings.

Everything here is synchronous and single-threaded (the event loop): a
subscription with replay is registered in the same step its missed frames
are queued, so nothing falls between the two and nothing comes twice.
A connection whose queue is full is closed as a slow client instead of
buffering without end.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from ec_recommend.edge.realtime.messages import ORDERS, PRODUCT_PREFIX, Push, frame, order_topic
from ec_recommend.edge.realtime.metrics import CountingMetrics, RealtimeMetrics
from ec_recommend.edge.realtime.ring import ReplayRing
from ec_recommend.platform import errors
from ec_recommend.platform.ids import require_id

# Close codes (4000-4999 are the application's own).
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
SLOW_CLIENT = 4008
IDLE = 4000
MAX_TOPIC_CHARS = 100


@dataclass(frozen=True)
class Limits:
    connections: int = 10_000  # per process
    connections_per_user: int = 5
    subscriptions_per_connection: int = 50
    send_queue: int = 256  # frames waiting for one slow socket
    replay_window: float = 60.0  # seconds
    replay_per_topic: int = 100
    replay_topics: int = 10_000  # rings kept (least recently pushed dropped first)


class Connection:
    """One socket's side of the hub: who it is, what it follows, what it owes."""

    def __init__(self, connection_id: int, user_id: str | None, bound: int) -> None:
        self.id = connection_id
        self.user_id = user_id
        self.bound = bound
        self.topics: dict[str, str] = {}  # client topic -> routing topic
        self.expiry: asyncio.TimerHandle | None = None  # closes it when its token expires
        self.close_code: int | None = None
        self.close_reason = ""
        self._queue: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._closing = asyncio.Event()
        self._drain = False

    @property
    def pending(self) -> int:
        return len(self._queue)

    def queued(self) -> list[bytes]:
        """The frames waiting to be written (for inspection)."""
        return list(self._queue)

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def offer(self, data: bytes) -> bool:
        """Queue a frame; False (and nothing queued) when the bound is reached."""
        if self.closing:
            return True  # going away anyway; not a slow client
        if len(self._queue) >= self.bound:
            return False
        self._queue.append(data)
        self._wakeup.set()
        return True

    def close(self, code: int, reason: str, *, drain: bool = False) -> None:
        """Ask for the socket to close; ``drain`` sends what is queued first."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self._drain = drain
        if not self._drain:
            self._queue.clear()  # what a going connection owes is dropped at once
        self._wakeup.set()
        self._closing.set()

    @property
    def drains(self) -> bool:
        """Whether queued frames are still to be sent before closing."""
        return self._drain

    async def wait_closing(self) -> None:
        await self._closing.wait()

    async def take(self) -> list[bytes]:
        """Wait for frames; all queued ones, or [] once the connection is closing."""
        while not self._queue and not self.closing:
            self._wakeup.clear()
            await self._wakeup.wait()
        if self.closing and not self._drain:
            return []
        frames = list(self._queue)
        self._queue.clear()
        return frames


class Hub:
    def __init__(
        self,
        limits: Limits | None = None,
        metrics: RealtimeMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits or Limits()
        self.metrics: RealtimeMetrics = metrics or CountingMetrics()
        self.clock = clock
        self.connections: dict[int, Connection] = {}
        self._by_user: dict[str, set[int]] = {}
        self._subscribers: dict[str, dict[int, Connection]] = {}
        self._rings: OrderedDict[str, ReplayRing] = OrderedDict()
        self._ids = itertools.count(1)
        self.accepting = True
        self._empty = asyncio.Event()
        self._empty.set()

    # -- connections -------------------------------------------------------

    def register(self, user_id: str | None) -> Connection:
        if not self.accepting:
            raise errors.Unavailable("the gateway is shutting down; reconnect elsewhere")
        if len(self.connections) >= self.limits.connections:
            raise errors.Unavailable("too many connections on this gateway; retry later")
        if user_id is not None:
            mine = self._by_user.get(user_id, set())
            if len(mine) >= self.limits.connections_per_user:
                raise errors.ResourceExhausted(
                    f"at most {self.limits.connections_per_user} connections per user",
                    limit=str(self.limits.connections_per_user),
                )
        connection = Connection(next(self._ids), user_id, self.limits.send_queue)
        self.connections[connection.id] = connection
        self._empty.clear()
        if user_id is not None:
            self._by_user.setdefault(user_id, set()).add(connection.id)
        self.metrics.opened()
        return connection

    def authenticate(self, connection: Connection, user_id: str) -> None:
        """Give an anonymous connection its user (first-message auth)."""
        if connection.user_id is not None:
            raise errors.FailedPrecondition("this connection is already authenticated")
        mine = self._by_user.get(user_id, set())
        if len(mine) >= self.limits.connections_per_user:
            raise errors.ResourceExhausted(
                f"at most {self.limits.connections_per_user} connections per user",
                limit=str(self.limits.connections_per_user),
            )
        connection.user_id = user_id
        self._by_user.setdefault(user_id, set()).add(connection.id)

    def unregister(self, connection: Connection) -> None:
        if self.connections.pop(connection.id, None) is None:
            return
        for routing in connection.topics.values():
            self._drop_subscriber(routing, connection)
        connection.topics.clear()
        if connection.user_id is not None:
            mine = self._by_user.get(connection.user_id)
            if mine is not None:
                mine.discard(connection.id)
                if not mine:
                    del self._by_user[connection.user_id]
        self.metrics.closed()
        if not self.connections:
            self._empty.set()

    def close_all(self, code: int, reason: str) -> None:
        self.accepting = False
        for connection in list(self.connections.values()):
            connection.close(code, reason)

    async def wait_empty(self) -> None:
        """Return once no connection is registered."""
        await self._empty.wait()

    # -- subscriptions -----------------------------------------------------

    def routing_topic(self, connection: Connection, topic: object) -> str:
        """The routing key of a client topic, if this connection may follow it."""
        if not isinstance(topic, str) or not topic or len(topic) > MAX_TOPIC_CHARS:
            raise errors.InvalidArgument(
                "topic: expected 'orders' or 'product:<id>'", field="topic"
            )
        if topic == ORDERS:
            if connection.user_id is None:
                raise errors.Unauthenticated("sign in to follow your orders", topic=topic)
            return order_topic(connection.user_id)
        if topic.startswith(PRODUCT_PREFIX):
            product_id = require_id(topic[len(PRODUCT_PREFIX) :], "topic")
            return PRODUCT_PREFIX + product_id
        raise errors.InvalidArgument("topic: expected 'orders' or 'product:<id>'", field="topic")

    def subscribe(
        self, connection: Connection, topic: object, last_event_id: str | None = None
    ) -> str:
        """Follow ``topic``; queues the ack, then what was missed after ``last_event_id``.

        Returns the canonical client topic.
        """
        routing = self.routing_topic(connection, topic)
        client_topic = ORDERS if routing.startswith(ORDERS + ":") else routing
        if client_topic in connection.topics:
            self.send(connection, frame("subscribed", topic=client_topic))
            return client_topic
        if len(connection.topics) >= self.limits.subscriptions_per_connection:
            raise errors.ResourceExhausted(
                f"at most {self.limits.subscriptions_per_connection} subscriptions per connection",
                limit=str(self.limits.subscriptions_per_connection),
            )
        missed: list[bytes] = []
        resumed: bool | None = None
        if last_event_id is not None:
            ring = self._rings.get(routing)
            found = ring.since(last_event_id, self.clock()) if ring is not None else None
            resumed = found is not None
            missed = found or []
        ack = (
            frame("subscribed", topic=client_topic)
            if resumed is None
            else frame("subscribed", topic=client_topic, resumed=resumed)
        )
        for data in (ack, *missed):
            if not connection.offer(data):
                self._slow(connection)
                return client_topic
        connection.topics[client_topic] = routing
        self._subscribers.setdefault(routing, {})[connection.id] = connection
        return client_topic

    def unsubscribe(self, connection: Connection, topic: object) -> str:
        routing = self.routing_topic(connection, topic)
        client_topic = ORDERS if routing.startswith(ORDERS + ":") else routing
        if connection.topics.pop(client_topic, None) is not None:
            self._drop_subscriber(routing, connection)
        self.send(connection, frame("unsubscribed", topic=client_topic))
        return client_topic

    def _drop_subscriber(self, routing: str, connection: Connection) -> None:
        subscribers = self._subscribers.get(routing)
        if subscribers is not None:
            subscribers.pop(connection.id, None)
            if not subscribers:
                del self._subscribers[routing]

    # -- delivery ----------------------------------------------------------

    def send(self, connection: Connection, data: bytes) -> None:
        """Queue a reply to one connection; a full queue closes it as slow."""
        if not connection.offer(data):
            self._slow(connection)

    def deliver(self, push: Push) -> int:
        """Queue ``push`` for its subscribers (once per event id); returns how many."""
        now = self.clock()
        ring = self._rings.get(push.topic)
        if ring is None:
            ring = ReplayRing(self.limits.replay_per_topic, self.limits.replay_window)
            self._rings[push.topic] = ring
            while len(self._rings) > self.limits.replay_topics:
                self._rings.popitem(last=False)
        elif push.event_id in ring:
            return 0
        self._rings.move_to_end(push.topic)
        ring.append(now, push.event_id, push.frame)
        delivered = 0
        for connection in list(self._subscribers.get(push.topic, {}).values()):
            if connection.offer(push.frame):
                delivered += 1
            else:
                self._slow(connection)
        return delivered

    def _slow(self, connection: Connection) -> None:
        self.metrics.slow_client()
        connection.close(SLOW_CLIENT, "send queue full: the client is not reading")
        for routing in connection.topics.values():
            self._drop_subscriber(routing, connection)
        connection.topics.clear()

    def expire_rings(self) -> None:
        """Drop rings with nothing left inside the replay window."""
        now = self.clock()
        for topic in list(self._rings):
            ring = self._rings[topic]
            ring.expire(now)
            if not len(ring):
                del self._rings[topic]
