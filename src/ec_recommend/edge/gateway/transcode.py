"""betterproto2 messages -> REST JSON, and their JSON Schema for OpenAPI.

The REST contract differs from canonical proto3 JSON on purpose: snake_case
names, int64 as JSON numbers (money amounts), timestamps as RFC 3339 UTC,
every field present (empty values included) so clients see a stable shape.
A per-class plan is computed once, keeping the hot path a simple loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import betterproto2

Encoder = Callable[[Any], Any]

_INTEGER_TYPES = frozenset(
    {
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
    }
)
_plans: dict[type[Any], list[tuple[str, Encoder]]] = {}


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _identity(value: Any) -> Any:
    return value


def _field_encoder(meta: Any) -> Encoder:
    proto_type = meta.proto_type
    if proto_type == "map":
        return dict
    if proto_type == "enum":
        single: Encoder = lambda value: value.name  # noqa: E731
    elif proto_type == "message":
        single = _timestamp if meta.unwrap is not None else message_to_json
    else:
        single = _identity
    if meta.repeated:
        return lambda values: [single(v) for v in values]
    if proto_type == "message" or meta.optional:
        return lambda value: None if value is None else single(value)
    return single


def _plan(message_type: type[Any]) -> list[tuple[str, Encoder]]:
    plan = _plans.get(message_type)
    if plan is None:
        plan = []
        for fld in dataclasses.fields(message_type):
            meta = fld.metadata.get("betterproto")
            if meta is None:
                continue
            plan.append((fld.name, _field_encoder(meta)))
        _plans[message_type] = plan
    return plan


def message_to_json(message: betterproto2.Message) -> dict[str, Any]:
    """The REST JSON object of ``message``."""
    return {name: encode(getattr(message, name)) for name, encode in _plan(type(message))}


# -- JSON Schema of message types (OpenAPI components) -------------------------


def component_name(message_type: type[Any]) -> str:
    return message_type.__name__


def message_schema(
    message_type: type[Any], components: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """A ``$ref`` to ``message_type``'s schema, adding it (and what it uses) to components."""
    name = component_name(message_type)
    if name not in components:
        components[name] = {}  # placeholder: breaks recursion
        properties: dict[str, Any] = {}
        for fld in dataclasses.fields(message_type):
            meta = fld.metadata.get("betterproto")
            if meta is None:
                continue
            properties[fld.name] = _field_schema(message_type, fld.name, meta, components)
        components[name] = {"type": "object", "properties": properties}
    return {"$ref": f"#/components/schemas/{name}"}


def _scalar_schema(proto_type: str) -> dict[str, Any]:
    if proto_type in _INTEGER_TYPES:
        return {"type": "integer"}
    if proto_type in ("double", "float"):
        return {"type": "number"}
    if proto_type == "bool":
        return {"type": "boolean"}
    return {"type": "string"}


def _field_schema(
    message_type: type[Any], name: str, meta: Any, components: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    if meta.proto_type == "map":
        value_meta = meta.map_meta[1]
        return {"type": "object", "additionalProperties": _scalar_schema(value_meta.proto_type)}
    if meta.proto_type == "message" and meta.unwrap is not None:
        single: dict[str, Any] = {"type": "string", "format": "date-time"}
    elif meta.proto_type == "message":
        cls = message_type._betterproto.cls_by_field[name]
        single = message_schema(cls, components)
    elif meta.proto_type == "enum":
        single = {"type": "string"}
    else:
        single = _scalar_schema(meta.proto_type)
    if meta.repeated:
        return {"type": "array", "items": single}
    if meta.proto_type == "message" or meta.optional:
        return {"oneOf": [single, {"type": "null"}]}
    return single
