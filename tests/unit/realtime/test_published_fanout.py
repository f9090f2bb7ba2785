"""Push from this process's own relays: what they published reaches the hub,
pushed kinds only, and a failing listener stops nobody else."""

from __future__ import annotations

import orjson
import pytest

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend.edge.realtime.fanout import hub_sink, published_fanout
from ec_recommend.edge.realtime.hub import Hub, Limits
from ec_recommend.edge.realtime.metrics import CountingMetrics
from ec_recommend.platform.events.envelope import new_encoded_event
from ec_recommend.platform.events.published_here import Published, PublishedHere


def _published(event_type: str, data: object) -> tuple[str, str]:
    _, body = new_encoded_event(event_type, data, source="test")  # type: ignore[arg-type]
    return event_type, body


@pytest.mark.asyncio
async def test_published_order_events_reach_their_buyer_and_others_are_not_decoded() -> None:
    hub = Hub(Limits(), CountingMetrics())
    buyer = hub.register("buyer-1")
    hub.subscribe(buyer, "orders")
    here = PublishedHere()
    paid_data = pb.OrderPaid(order=pb_order.Order(id="o-1", user_id="buyer-1", status="PAID"))
    paid = _published("order.paid", paid_data)
    created_user = ("user.created", "not even JSON: never decoded, never pushed")
    async with published_fanout(here, hub_sink(hub)) as fanout:
        assert fanout.name == "process"
        here.published([created_user, paid])
        here.published([paid])  # published again (a relay's retry): pushed once

    def pushed() -> list[tuple[str, str]]:
        frames = [orjson.loads(frame) for frame in buyer.queued()]
        return [
            (f["data"]["order_id"], f["data"]["status"])
            for f in frames
            if f["type"] == "order.status_changed"
        ]

    assert pushed() == [("o-1", "PAID")]
    here.published([_published("order.paid", paid_data)])  # a new event, after the block
    assert pushed() == [("o-1", "PAID")]


def test_a_failing_listener_does_not_keep_the_batch_from_the_others() -> None:
    here = PublishedHere()
    heard: list[Published] = []

    def broken(_: Published) -> None:
        raise RuntimeError("listener bug")

    batch = [("order.paid", "{}")]
    with here.listening(broken), here.listening(heard.append):
        here.published(batch)
    assert heard == [batch]
