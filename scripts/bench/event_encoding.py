#!/usr/bin/env python
"""Building and encoding event envelopes: betterproto2's ``to_dict`` against
``platform.events.proto_json``, both in the same run.

Per envelope, for two events:
  order.paid               the order service's event: the domain order to its
                           protobuf, the OrderPaid payload, the checked event
                           and its JSON body (as ``record_event`` does)
  analytics.user_activity  the gateway's "product viewed" activity event:
                           the payload, the checked event and its body
each two ways:
  to_dict   the path before: the payload rendered by ``to_dict`` to check it,
            then again to encode it
  encoder   ``new_encoded_event``: rendered once, by the per-class plan
Bodies are checked equal first. Prints µs per envelope (best of ``--rounds``)
and the speed-up.

Usage: .venv/bin/python scripts/bench/event_encoding.py [--envelopes 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from datetime import timedelta

import betterproto2

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.events.envelope import (
    EVENT_TYPES,
    REQUIRED_DATA,
    Event,
    MalformedEvent,
    new_encoded_event,
)
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.money import Money
from ec_recommend.services.order import domain
from ec_recommend.services.order.convert import order_to_pb

METADATA = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


def to_dict_envelope(
    event_type: str, data: betterproto2.Message, *, source: str, metadata: Mapping[str, str]
) -> str:
    """The envelope as it was built before proto_json: to_dict to check, to_dict to encode."""
    expected = EVENT_TYPES[event_type]
    if not isinstance(data, expected):
        raise TypeError(event_type)
    rendered = data.to_dict()
    if any(not rendered.get(key) for key in REQUIRED_DATA.get(event_type, ())):
        raise MalformedEvent(event_type)
    event = Event(new_id(), event_type, utcnow(), source, data, dict(metadata))
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "timestamp": aware(event.timestamp).isoformat(),
            "source": event.source,
            "data": event.data.to_dict(),
            "metadata": dict(event.metadata),
        },
        separators=(",", ":"),
    )


def encoder_envelope(
    event_type: str, data: betterproto2.Message, *, source: str, metadata: Mapping[str, str]
) -> str:
    return new_encoded_event(event_type, data, source=source, metadata=metadata)[1]


Envelope = Callable[..., str]


def sample_order() -> domain.Order:
    now = utcnow()
    lines = tuple(
        domain.Line(f"product-{n}", "seller-1", f"珈琲豆 {n}", n + 1, Money(1200 + n, "JPY"))
        for n in range(3)
    )
    total = Money(sum(line.line_total.amount for line in lines), "JPY")
    return domain.Order(
        id=new_id(),
        order_number="EC-20260401-000123",
        user_id=new_id(),
        status=domain.PAID,
        total=total,
        items=lines,
        stock_state=domain.STOCK_COMMITTED,
        payment_id=new_id(),
        created_at=now - timedelta(seconds=3),
        updated_at=now,
    )


def order_paid(envelope: Envelope, order: domain.Order) -> str:
    data = pb.OrderPaid(
        order=order_to_pb(order), payment_id=order.payment_id, amount=order.total.to_pb()
    )
    return envelope("order.paid", data, source="order-service", metadata=METADATA)


VIEWED_AT = utcnow()


def product_viewed(envelope: Envelope) -> str:
    data = pb.UserActivity(
        user_id="user-1", session_id="s-1", activity="view", product_id="p-1", occurred_at=VIEWED_AT
    )
    return envelope("analytics.user_activity", data, source="api-gateway", metadata={})


def per_envelope(make: Callable[[], str], count: int, rounds: int) -> float:
    """Best µs per envelope over ``rounds`` runs of ``count``."""
    make()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            make()
        best = min(best, (time.perf_counter() - started) / count)
    return best * 1e6


def same_body(a: str, b: str) -> bool:
    """Equal but for the id and timestamp each envelope gets afresh."""
    left, right = json.loads(a), json.loads(b)
    return all(left[key] == right[key] for key in ("type", "source", "data", "metadata")) and (
        json.dumps(left["data"]) == json.dumps(right["data"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envelopes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    order = sample_order()
    cases: dict[str, Callable[[Envelope], str]] = {
        "order.paid": lambda envelope: order_paid(envelope, order),
        "analytics.user_activity": product_viewed,
    }
    print(f"Event envelopes: µs per envelope, best of {args.rounds} x {args.envelopes}")
    for name, case in cases.items():
        assert same_body(case(to_dict_envelope), case(encoder_envelope)), name
        before = per_envelope(lambda case=case: case(to_dict_envelope), args.envelopes, args.rounds)
        after = per_envelope(lambda case=case: case(encoder_envelope), args.envelopes, args.rounds)
        print(
            f"  {name:<24} to_dict {before:7.1f} µs  encoder {after:6.1f} µs  "
            f"x{before / after:.1f} faster"
        )


if __name__ == "__main__":
    main()
