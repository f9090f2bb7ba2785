"""Domain events -> push frames, and the frames of the protocol itself.

A push is serialised once and the same bytes go to every subscriber. Order
events go to the topic of the order's owner only (``orders:<user id>``);
product events go to ``product:<id>``. Clients name their topics as
``orders`` and ``product:<id>``; the frame carries that client-facing name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import betterproto2
import orjson

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.edge.gateway.http_errors import INTERNAL_ERROR, classify
from ec_recommend.platform import errors
from ec_recommend.platform.events.envelope import Event

ORDERS = "orders"
PRODUCT_PREFIX = "product:"
ORDER_EVENTS = frozenset(
    {"order.created", "order.paid", "order.shipped", "order.delivered", "order.cancelled"}
)
PRODUCT_EVENTS = frozenset({"product.updated", "product.out_of_stock"})
PUSHED_EVENTS = ORDER_EVENTS | PRODUCT_EVENTS


@dataclass(frozen=True)
class Push:
    """One frame for one routing topic; ``frame`` is the JSON sent as is."""

    topic: str  # routing key: "orders:<user id>" or "product:<id>"
    event_id: str
    frame: bytes


def order_topic(user_id: str) -> str:
    return f"{ORDERS}:{user_id}"


def push_for(event: Event) -> Push | None:
    """The push a domain event becomes, or None for events clients never see."""
    if event.type in ORDER_EVENTS:
        order = getattr(event.data, "order", None)
        if order is None or not order.user_id:
            return None
        data: dict[str, Any] = {
            "order_id": order.id,
            "order_number": order.order_number,
            "status": order.status,
            "total_amount": _money(order.total_amount),
            "updated_at": _time(order.updated_at),
        }
        if isinstance(event.data, pb.OrderCancelled):
            data["reason"] = event.data.reason
            data["refunded"] = event.data.refunded
        return _push(order_topic(order.user_id), ORDERS, "order.status_changed", event, data)
    if isinstance(event.data, pb.ProductUpdated):
        product = event.data
        data = {
            "product_id": product.product_id,
            "name": product.name,
            "base_price": _money(product.base_price),
            "sale_price": _money(product.sale_price),
            "stock_quantity": product.stock_quantity,
            "status": product.status,
            "changed_fields": list(product.changed_fields),
        }
        topic = PRODUCT_PREFIX + product.product_id
        return _push(topic, topic, "product.updated", event, data)
    if isinstance(event.data, pb.ProductOutOfStock):
        topic = PRODUCT_PREFIX + event.data.product_id
        data = {"product_id": event.data.product_id}
        return _push(topic, topic, "product.out_of_stock", event, data)
    return None


def _push(topic: str, client_topic: str, kind: str, event: Event, data: Mapping[str, Any]) -> Push:
    frame = orjson.dumps(
        {
            "type": kind,
            "topic": client_topic,
            "event_id": event.id,
            "timestamp": _time(event.timestamp),
            "data": data,
        }
    )
    return Push(topic, event.id, frame)


def _money(value: betterproto2.Message | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"amount": getattr(value, "amount", 0), "currency": getattr(value, "currency", "")}


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def frame(kind: str, **fields: Any) -> bytes:
    return orjson.dumps({"type": kind, **fields})


def error_frame(error: errors.ServiceError, **context: str) -> bytes:
    """An ``error`` message in the REST error shape (``code``, ``message``, ``details``)."""
    kind = classify(error)
    if kind is INTERNAL_ERROR:
        return frame("error", code=kind.code, message="an internal error occurred")
    details = {**error.details, **context}
    body: dict[str, Any] = {"code": kind.code, "message": error.message}
    if details:
        body["details"] = details
    return frame("error", **body)
