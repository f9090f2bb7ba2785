"""The event envelope and its JSON codec, shared by producers and consumers.

Body of every SNS/SQS message (seed section 5.1)::

    {"id", "type", "timestamp", "source", "data", "metadata"}

``data`` is the proto message of ``type`` rendered as proto3 JSON (camelCase
keys), by ``proto_json`` (what betterproto2's ``to_dict`` gives, much cheaper);
``new_encoded_event`` makes an event and its body rendering the payload once.
``decode`` checks everything a handler relies on, so a handler never sees a
half-valid event: a bad body raises ``MalformedEvent``, a type we do
not know raises ``UnknownEventType``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import betterproto2

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.events.proto_json import to_json_dict
from ec_recommend.platform.events.proto_json_read import from_json_dict
from ec_recommend.platform.ids import new_id

EVENT_TYPES: Mapping[str, type[betterproto2.Message]] = {
    "user.created": pb.UserCreated,
    "user.updated": pb.UserUpdated,
    "product.created": pb.ProductCreated,
    "product.updated": pb.ProductUpdated,
    "product.out_of_stock": pb.ProductOutOfStock,
    "order.created": pb.OrderCreated,
    "order.paid": pb.OrderPaid,
    "order.shipped": pb.OrderShipped,
    "order.delivered": pb.OrderDelivered,
    "order.cancelled": pb.OrderCancelled,
    "review.created": pb.ReviewCreated,
    "analytics.user_activity": pb.UserActivity,
}

# Keys of ``data`` (proto3 JSON names) without which an event means nothing.
# proto3 has no required fields, so the codec enforces these.
REQUIRED_DATA: Mapping[str, tuple[str, ...]] = {
    "user.created": ("userId",),
    "user.updated": ("userId",),
    "product.created": ("productId",),
    "product.updated": ("productId",),
    "product.out_of_stock": ("productId",),
    "order.created": ("order",),
    "order.paid": ("order",),
    "order.shipped": ("order",),
    "order.delivered": ("order",),
    "order.cancelled": ("order",),
    "review.created": ("reviewId", "productId"),
    "analytics.user_activity": ("activity",),
}

MAX_BODY_BYTES = 256 * 1024  # the SQS/SNS message size limit

# Metadata keys that travel as message attributes too.
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
CORRELATION_ID = "correlation_id"


class EventError(ValueError):
    """A message body that cannot become an ``Event``."""


class MalformedEvent(EventError):
    """Not JSON, not an envelope, a missing field or a payload of the wrong shape."""


class UnknownEventType(EventError):
    """A well-formed envelope whose ``type`` we do not know."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    timestamp: datetime
    source: str
    data: betterproto2.Message
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def correlation_id(self) -> str:
        return self.metadata.get(CORRELATION_ID, "")


def new_event(
    event_type: str,
    data: betterproto2.Message,
    *,
    source: str,
    metadata: Mapping[str, str] | None = None,
) -> Event:
    """A fresh event with a new id and the current time; checks the payload type."""
    _checked_data(event_type, data)
    return Event(new_id(), event_type, utcnow(), source, data, dict(metadata or {}))


def new_encoded_event(
    event_type: str,
    data: betterproto2.Message,
    *,
    source: str,
    metadata: Mapping[str, str] | None = None,
) -> tuple[Event, str]:
    """``new_event`` and its message body, the payload rendered once (checked and encoded)."""
    rendered = _checked_data(event_type, data)
    event = Event(new_id(), event_type, utcnow(), source, data, dict(metadata or {}))
    return event, _body(event, rendered)


def encode(event: Event) -> str:
    return _body(event, to_json_dict(event.data))


def _checked_data(event_type: str, data: betterproto2.Message) -> dict[str, Any]:
    """The payload as proto3 JSON, once it is the type's message with its required keys."""
    expected = EVENT_TYPES.get(event_type)
    if expected is None:
        raise UnknownEventType(event_type)
    if not isinstance(data, expected):
        raise TypeError(f"{event_type} carries {expected.__name__}, got {type(data).__name__}")
    rendered = to_json_dict(data)
    missing = [key for key in REQUIRED_DATA.get(event_type, ()) if not rendered.get(key)]
    if missing:
        raise MalformedEvent(f"{event_type}: data is missing {', '.join(missing)}")
    return rendered


def _body(event: Event, rendered: dict[str, Any]) -> str:
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "timestamp": aware(event.timestamp).isoformat(),
            "source": event.source,
            "data": rendered,
            "metadata": dict(event.metadata),
        },
        separators=(",", ":"),
    )


def decode(body: str | bytes) -> Event:
    """Parse and validate one message body."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedEvent("body exceeds 256 KiB")
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedEvent("envelope is not a JSON object")
    event_id = _text(raw, "id")
    event_type = _text(raw, "type")
    source = _text(raw, "source")
    timestamp = _timestamp(raw.get("timestamp"))
    metadata = _metadata(raw.get("metadata"))
    payload_type = EVENT_TYPES.get(event_type)
    if payload_type is None:
        raise UnknownEventType(event_type)
    data = _payload(event_type, payload_type, raw.get("data"))
    return Event(event_id, event_type, timestamp, source, data, metadata)


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent(f"{key}: expected a non-empty string")
    if len(value) > 256:
        raise MalformedEvent(f"{key}: longer than 256 characters")
    return value


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        raise MalformedEvent("timestamp: expected an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(f"timestamp: not ISO 8601: {value!r}") from None
    return aware(parsed)


def _metadata(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEvent("metadata: expected an object")
    # The seed allows any values; we keep the string ones we propagate.
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _payload(
    event_type: str, payload_type: type[betterproto2.Message], value: object
) -> betterproto2.Message:
    if not isinstance(value, dict):
        raise MalformedEvent("data: expected an object")
    missing = [key for key in REQUIRED_DATA.get(event_type, ()) if not value.get(key)]
    if missing:
        raise MalformedEvent(f"data: missing {', '.join(missing)}")
    try:
        # Unknown fields are ignored so producers can add fields before consumers
        # learn them; a value of the wrong type ({"productId": 5}) is refused.
        return from_json_dict(payload_type, value)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise MalformedEvent(f"data: not a valid {payload_type.__name__}: {exc}") from None
