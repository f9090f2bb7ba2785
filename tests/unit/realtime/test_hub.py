"""The hub: who may follow what, bounded queues, limits, replay and dedupe."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid

import orjson
import pytest

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend.edge.realtime.expiry import TOKEN_EXPIRED, close_at_expiry, token_expiry
from ec_recommend.edge.realtime.hub import SLOW_CLIENT, Connection, Hub, Limits
from ec_recommend.edge.realtime.messages import Push, push_for
from ec_recommend.edge.realtime.metrics import CountingMetrics
from ec_recommend.platform import errors
from ec_recommend.platform.events.envelope import new_event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hub(**limits: int | float) -> tuple[Hub, Clock, CountingMetrics]:
    clock, metrics = Clock(), CountingMetrics()
    return Hub(Limits(**limits), metrics, clock), clock, metrics  # type: ignore[arg-type]


def order_paid(user_id: str, order_id: str | None = None) -> Push:
    order = pb_order.Order(id=order_id or str(uuid.uuid4()), user_id=user_id, status="PAID")
    push = push_for(new_event("order.paid", pb.OrderPaid(order=order), source="test"))
    assert push is not None
    return push


def product_push(product_id: str) -> Push:
    event = new_event(
        "product.out_of_stock", pb.ProductOutOfStock(product_id=product_id), source="t"
    )
    push = push_for(event)
    assert push is not None
    return push


def drain(connection: Connection) -> list[dict[str, object]]:
    frames = [orjson.loads(f) for f in connection.queued()]
    connection._queue.clear()
    return frames


def test_order_push_is_shaped_for_clients() -> None:
    order = pb_order.Order(id="o-1", order_number="N1", user_id="u-1", status="PAID")
    event = new_event("order.paid", pb.OrderPaid(order=order), source="order")
    push = push_for(event)
    assert push is not None and push.topic == "orders:u-1"
    body = orjson.loads(push.frame)
    assert body["type"] == "order.status_changed" and body["topic"] == "orders"
    assert body["event_id"] == event.id and body["timestamp"].endswith("Z")
    assert body["data"]["order_id"] == "o-1" and body["data"]["status"] == "PAID"


def test_events_clients_never_see_make_no_push() -> None:
    event = new_event("user.created", pb.UserCreated(user_id="u"), source="user")
    assert push_for(event) is None


def test_a_user_gets_only_their_own_orders() -> None:
    h, _, _ = hub()
    alice, bob = h.register("alice"), h.register("bob")
    h.subscribe(alice, "orders")
    h.subscribe(bob, "orders")
    drain(alice), drain(bob)
    assert h.deliver(order_paid("alice")) == 1
    assert [f["type"] for f in drain(alice)] == ["order.status_changed"]
    assert drain(bob) == []


def test_anonymous_may_follow_products_but_not_orders() -> None:
    h, _, _ = hub()
    anonymous = h.register(None)
    with pytest.raises(errors.Unauthenticated):
        h.subscribe(anonymous, "orders")
    product_id = str(uuid.uuid4())
    assert h.subscribe(anonymous, f"product:{product_id}") == f"product:{product_id}"
    assert drain(anonymous) == [{"type": "subscribed", "topic": f"product:{product_id}"}]
    h.deliver(product_push(product_id))
    assert drain(anonymous)[0]["type"] == "product.out_of_stock"


@pytest.mark.parametrize(
    "topic", ["", "order", "product:", "product:not-an-id", 5, None, "x" * 500]
)
def test_malformed_topics_are_refused(topic: object) -> None:
    h, _, _ = hub()
    with pytest.raises(errors.InvalidArgument):
        h.subscribe(h.register("alice"), topic)


def test_subscriptions_per_connection_are_limited() -> None:
    h, _, _ = hub(subscriptions_per_connection=2)
    connection = h.register(None)
    h.subscribe(connection, f"product:{uuid.uuid4()}")
    h.subscribe(connection, f"product:{uuid.uuid4()}")
    with pytest.raises(errors.ResourceExhausted):
        h.subscribe(connection, f"product:{uuid.uuid4()}")


def test_connections_per_user_are_limited_and_freed_on_close() -> None:
    h, _, metrics = hub(connections_per_user=2)
    first, _ = h.register("alice"), h.register("alice")
    with pytest.raises(errors.ResourceExhausted):
        h.register("alice")
    anonymous = h.register(None)
    with pytest.raises(errors.ResourceExhausted):
        h.authenticate(anonymous, "alice")  # first-message auth counts too
    h.register("bob")
    h.unregister(first)
    h.register("alice")
    assert metrics.open == 4


def test_a_full_send_queue_closes_the_slow_client_only() -> None:
    h, _, metrics = hub(send_queue=3)
    slow, fine = h.register("alice"), h.register("alice")
    h.subscribe(slow, "orders")
    h.subscribe(fine, "orders")
    drain(slow)
    for _ in range(3):
        h.deliver(order_paid("alice"))
        drain(fine)
    assert slow.pending == 3 and not slow.closing
    h.deliver(order_paid("alice"))
    assert slow.close_code == SLOW_CLIENT and slow.pending == 0  # memory released at once
    assert metrics.slow_clients == 1
    assert len(drain(fine)) == 1 and not fine.closing
    h.deliver(order_paid("alice"))  # the slow one no longer receives anything
    assert slow.pending == 0


def test_resume_replays_what_followed_last_event_id_once() -> None:
    h, _, _ = hub()
    first = h.register("alice")
    h.subscribe(first, "orders")
    pushes = [order_paid("alice") for _ in range(4)]
    h.deliver(pushes[0])
    seen = drain(first)[-1]["event_id"]
    h.unregister(first)  # disconnected while three more happen
    for push in pushes[1:]:
        h.deliver(push)
    again = h.register("alice")
    h.subscribe(again, "orders", last_event_id=str(seen))
    frames = drain(again)
    assert frames[0] == {"type": "subscribed", "topic": "orders", "resumed": True}
    assert [f["event_id"] for f in frames[1:]] == [p.event_id for p in pushes[1:]]
    h.deliver(pushes[2])  # a redelivered duplicate
    assert drain(again) == []


def test_resume_outside_the_window_says_so() -> None:
    h, clock, _ = hub(replay_window=30.0)
    connection = h.register("alice")
    push = order_paid("alice")
    h.deliver(push)
    h.deliver(order_paid("alice"))
    clock.now += 31
    h.subscribe(connection, "orders", last_event_id=push.event_id)
    assert drain(connection) == [{"type": "subscribed", "topic": "orders", "resumed": False}]
    h.subscribe(h.register("bob"), "orders", last_event_id="unknown")


def test_replay_rings_are_bounded() -> None:
    h, _, _ = hub(replay_per_topic=3, replay_topics=2)
    pushes = [order_paid("alice") for _ in range(5)]
    for push in pushes:
        h.deliver(push)
    connection = h.register("alice")
    h.subscribe(connection, "orders", last_event_id=pushes[0].event_id)
    assert drain(connection)[0]["resumed"] is False  # fell out of the ring
    h.deliver(order_paid("bob"))
    h.deliver(order_paid("carol"))  # the third topic evicts alice's ring
    h.unsubscribe(connection, "orders")
    h.subscribe(connection, "orders", last_event_id=pushes[4].event_id)
    assert drain(connection)[-1]["resumed"] is False


def test_close_all_refuses_new_connections() -> None:
    h, _, _ = hub()
    connection = h.register("alice")
    h.close_all(1001, "bye")
    assert connection.close_code == 1001
    with pytest.raises(errors.Unavailable):
        h.register("bob")


def _jwt(claims: dict[str, object]) -> str:
    payload = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln"


def test_token_expiry_is_read_from_the_exp_claim() -> None:
    assert token_expiry(_jwt({"sub": "a", "exp": 1_900_000_000})) == 1_900_000_000.0
    for token in ("opaque", _jwt({"sub": "a"}), _jwt({"exp": "soon"}), "a.!!!.c", "a.bnVsbA.c"):
        assert token_expiry(token) is None


@pytest.mark.asyncio
async def test_a_connection_is_closed_when_its_token_expires() -> None:
    h, _, _ = hub()
    connection = h.register("alice")
    handle = close_at_expiry(connection, _jwt({"exp": time.time() - 1}))
    assert handle is not None
    await asyncio.wait_for(connection.wait_closing(), 5)
    assert connection.close_code == TOKEN_EXPIRED
