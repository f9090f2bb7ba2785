"""proto3 JSON of our generated messages, at a fraction of ``to_dict``'s cost.

betterproto2's ``Message.to_dict()`` resolves the class's type hints
(``typing.get_type_hints``) and re-cases every field name on every call: an
``order.paid`` payload took ~200 µs to render, twice per event. Here the
work that depends only on the class is done once per class, into a plan of
(attribute, JSON name, how to render); rendering a message is then one pass
over its fields.

The output is what ``to_dict()`` (proto3 JSON, camelCase, default values
left out) gives, key for key and in the same order: scalar rules, 64-bit
integers as strings, optional and oneof fields present when set, nested
messages always present when set, empty lists and maps left out. The common
kinds are rendered here; the rare ones (enums, floats, bytes, maps, wrapped
well-known types other than Timestamp) go through betterproto2's own
per-value conversion, so they cannot drift from it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any, cast

import betterproto2
from betterproto2 import (
    TYPE_BOOL,
    TYPE_FIXED32,
    TYPE_INT32,
    TYPE_MAP,
    TYPE_MESSAGE,
    TYPE_SFIXED32,
    TYPE_SINT32,
    TYPE_STRING,
    TYPE_UINT32,
    _value_to_dict,
)

from ec_recommend._gen.google.protobuf import Timestamp

_AS_IS = frozenset(
    {TYPE_STRING, TYPE_BOOL, TYPE_INT32, TYPE_UINT32, TYPE_SINT32, TYPE_FIXED32, TYPE_SFIXED32}
)
_INT64 = frozenset(betterproto2.INT_64_TYPES)

Render = Callable[[Any], Any]
# (attribute, JSON key, render one value, repeated, present when set even if default)
_Step = tuple[str, str, Render | None, bool, bool]
_plans: dict[type[betterproto2.Message], list[_Step]] = {}


def to_json_dict(message: betterproto2.Message) -> dict[str, Any]:
    """``message.to_dict()``'s proto3 JSON, rendered from a per-class plan."""
    plan = _plans.get(type(message))
    if plan is None:
        if _renders_itself(type(message)):
            return message.to_dict()  # type: ignore[no-any-return]
        plan = _plans[type(message)] = _compile(type(message))
    output: dict[str, Any] = {}
    for attribute, key, render, repeated, when_set in plan:
        value = getattr(message, attribute)
        if repeated:
            if value:
                output[key] = value if render is None else [render(item) for item in value]
        elif value is None:
            continue
        elif when_set or value:
            output[key] = value if render is None else render(value)
    return output


def dumps(message: betterproto2.Message) -> str:
    """Compact proto3 JSON text of ``message``."""
    return json.dumps(to_json_dict(message), separators=(",", ":"))


def _renders_itself(cls: type[betterproto2.Message]) -> bool:
    """A well-known type (Any, Timestamp...) with a JSON form of its own."""
    return cls.to_dict is not betterproto2.Message.to_dict


def _itself(value: betterproto2.Message) -> Any:
    return value.to_dict()


def _timestamp(value: datetime.datetime) -> str:
    if value.tzinfo is None:  # as Timestamp.from_datetime refuses it
        raise ValueError("datetime must be timezone aware")
    return Timestamp.timestamp_to_json(value)


def _compile(cls: type[betterproto2.Message]) -> list[_Step]:
    hints: dict[str, Any] = cls._type_hints()
    fields: dict[str, Any] = cast(Any, cls)._betterproto.meta_by_field_name
    plan: list[_Step] = []
    for name, meta in fields.items():
        key = betterproto2.Casing.CAMEL(name).rstrip("_")
        hint = hints[name]
        if meta.repeated or meta.optional:
            hint = hint.__args__[0]
        when_set = bool(meta.optional or meta.group)
        if meta.proto_type == TYPE_MAP:
            plan.append((name, key, _map_renderer(cls, name, meta), False, False))
            continue
        plan.append((name, key, _renderer(meta, hint), bool(meta.repeated), when_set))
    return plan


def _renderer(meta: Any, hint: Any) -> Render | None:
    """How one value of a field is rendered; None when it is its own JSON."""
    if meta.proto_type == TYPE_MESSAGE:
        if meta.unwrap is None:
            return _itself if _renders_itself(hint) else to_json_dict
        if meta.unwrap() is Timestamp:
            return _timestamp
        unwrapped = meta.unwrap

        def wrapped(value: Any) -> Any:
            return unwrapped().from_wrapped(value).to_dict()

        return wrapped
    if meta.proto_type in _AS_IS:
        return None
    if meta.proto_type in _INT64:
        return str

    def converted(value: Any) -> Any:
        return _value_to_dict(
            value,
            meta.proto_type,
            hint,
            meta.unwrap,
            output_format=betterproto2.OutputFormat.PROTO_JSON,
            casing=betterproto2.Casing.CAMEL,
            include_default_values=False,
        )[0]

    return converted


def _map_renderer(cls: type[betterproto2.Message], name: str, meta: Any) -> Render:
    """A map's keys and values, each converted as ``to_dict`` does (present when not empty)."""
    key_meta, value_meta = meta.map_meta
    hints: dict[str, Any] = cls._type_hints()
    key_hint, value_hint = hints[name].__args__
    render_key = _renderer(key_meta, key_hint)
    render_value = _renderer(value_meta, value_hint)

    def rendered(mapping: Any) -> Any:
        return {
            (k if render_key is None else render_key(k)): (
                v if render_value is None else render_value(v)
            )
            for k, v in mapping.items()
        }

    return rendered
