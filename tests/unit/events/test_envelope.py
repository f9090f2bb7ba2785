"""The envelope codec: round trips, and every kind of bad body rejected clearly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend.platform.events.envelope import (
    EVENT_TYPES,
    MalformedEvent,
    UnknownEventType,
    decode,
    encode,
    new_event,
)


def test_every_seed_event_type_has_a_payload() -> None:
    assert set(EVENT_TYPES) == {
        "user.created", "user.updated", "product.created", "product.updated",
        "product.out_of_stock", "order.created", "order.paid", "order.shipped",
        "order.delivered", "order.cancelled", "review.created", "analytics.user_activity",
    }  # fmt: skip


def test_round_trip_keeps_every_field() -> None:
    data = pb.OrderPaid(
        order=pb_order.Order(id="o-1", user_id="u-1"),
        payment_id="pay-1",
        amount=pb_common.Money(amount=1200, currency="JPY"),
    )
    event = new_event("order.paid", data, source="order-service", metadata={"traceparent": "00-x"})
    decoded = decode(encode(event))
    assert decoded == event
    assert decode(encode(event).encode()) == event


def test_envelope_shape_matches_the_seed() -> None:
    event = new_event("review.created", pb.ReviewCreated(review_id="r", product_id="p"), source="s")
    raw = json.loads(encode(event))
    assert set(raw) == {"id", "type", "timestamp", "source", "data", "metadata"}
    assert raw["data"] == {"reviewId": "r", "productId": "p"}


def test_new_event_checks_the_payload_type() -> None:
    with pytest.raises(MalformedEvent):  # consumers would reject it: refuse to produce it
        new_event("review.created", pb.ReviewCreated(review_id="r"), source="s")
    with pytest.raises(TypeError):
        new_event("order.paid", pb.ReviewCreated(), source="s")
    with pytest.raises(UnknownEventType):
        new_event("order.lost", pb.ReviewCreated(), source="s")


def envelope(**overrides: Any) -> str:
    base: dict[str, Any] = {
        "id": "e-1",
        "type": "product.updated",
        "timestamp": "2026-01-01T00:00:00Z",
        "source": "product-service",
        "data": {"productId": "p-1", "stockQuantity": 3},
    }
    base.update(overrides)
    return json.dumps({k: v for k, v in base.items() if v is not None})


def test_a_valid_envelope_decodes() -> None:
    event = decode(envelope())
    assert event.data == pb.ProductUpdated(product_id="p-1", stock_quantity=3)
    assert event.timestamp.tzinfo is not None and event.metadata == {}


def test_fields_a_newer_producer_added_are_ignored() -> None:
    event = decode(envelope(data={"productId": "p", "addedLater": {"x": 1}}))
    assert event.data == pb.ProductUpdated(product_id="p")


def test_unknown_type_is_its_own_error() -> None:
    with pytest.raises(UnknownEventType) as err:
        decode(envelope(type="order.teleported"))
    assert err.value.event_type == "order.teleported"


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "",
        "[1, 2]",
        '"text"',
        envelope(id=None),
        envelope(id=""),
        envelope(id=5),
        envelope(type=None),
        envelope(source=None),
        envelope(timestamp=None),
        envelope(timestamp="yesterday"),
        envelope(data=None),
        envelope(data=[1]),
        envelope(data={"name": "no product id"}),
        envelope(data={"productId": 5}),
        envelope(data={"productId": "p", "stockQuantity": "many"}),
        envelope(data={"productId": "p", "basePrice": "free"}),
        envelope(metadata=[1]),
        envelope(id="x" * 1000),
        "x" * (300 * 1024),
    ],
)
def test_malformed_bodies_are_rejected(body: str) -> None:
    with pytest.raises(MalformedEvent):
        decode(body)


def test_relay_repeats_type_trace_context_and_correlation_as_attributes() -> None:
    from ec_recommend.platform.events.relay import _attributes

    metadata = {"traceparent": "00-abc-def-01", "correlation_id": "req-1", "other": "x"}
    event = new_event(
        "review.created",
        pb.ReviewCreated(review_id="r", product_id="p"),
        source="s",
        metadata=metadata,
    )
    attributes = _attributes(event.type, encode(event))
    assert {k: v["StringValue"] for k, v in attributes.items()} == {
        "type": "review.created",
        "traceparent": "00-abc-def-01",
        "correlation_id": "req-1",
    }
