"""proto3 JSON back into our generated messages, checked as it is read.

What ``cls.from_dict(value, ignore_unknown_fields=True)`` builds, key for key
(camelCase or snake_case names, unknown keys and nulls skipped), from a
per-class plan made once: for each JSON key, the field and how to read one
value. Unlike ``from_dict``, a value of the wrong type is refused here
(``TypeError``/``ValueError``): a string where a number belongs, a number for
a string, a list for a message. The common kinds are read here, and so are
RFC 3339 timestamps with an explicit offset (every event carries a few:
betterproto2 parses them with ``dateutil.parser.isoparse``, ~9 µs each and
~1.5 % of ``up``'s CPU under checkout, where ``datetime.fromisoformat`` gives
the same instant in ~0.3 µs); the rare ones (enums, floats, bytes, other
timestamp spellings, wrapped well-known types) go through betterproto2's own
per-value conversion.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

import betterproto2
from betterproto2 import (
    TYPE_BOOL,
    TYPE_FIXED32,
    TYPE_FIXED64,
    TYPE_INT32,
    TYPE_INT64,
    TYPE_MAP,
    TYPE_MESSAGE,
    TYPE_SFIXED32,
    TYPE_SFIXED64,
    TYPE_SINT32,
    TYPE_SINT64,
    TYPE_STRING,
    TYPE_UINT32,
    TYPE_UINT64,
    _value_from_dict,
)
from betterproto2.casing import safe_snake_case

from ec_recommend._gen.google.protobuf import Timestamp

Read = Callable[[Any], Any]
# JSON key -> (attribute, read one value, repeated)
_Plan = dict[str, tuple[str, Read, bool]]
_plans: dict[type[betterproto2.Message], _Plan | None] = {}

_SIGNED = frozenset(
    {TYPE_INT32, TYPE_SINT32, TYPE_SFIXED32, TYPE_INT64, TYPE_SINT64, TYPE_SFIXED64}
)
_UNSIGNED = frozenset({TYPE_UINT32, TYPE_FIXED32, TYPE_UINT64, TYPE_FIXED64})
# RFC 3339 as proto3 JSON writes a Timestamp, with its offset: the spelling on
# which ``fromisoformat`` and ``isoparse`` agree (both keep 6 fractional digits).
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)", re.ASCII)


def from_json_dict(cls: type[betterproto2.Message], value: Any) -> betterproto2.Message:
    """The ``cls`` message ``value`` (proto3 JSON) describes; wrong types raise."""
    if cls in _plans:
        plan = _plans[cls]
    else:
        plan = _plans[cls] = None if _reads_itself(cls) else _compile(cls)
    if plan is None:
        return cls.from_dict(value, ignore_unknown_fields=True)
    if not isinstance(value, Mapping):
        raise TypeError(f"{cls.__name__}: expected an object, got {type(value).__name__}")
    fields: dict[str, Any] = {}
    for key, item in value.items():
        step = plan.get(key)
        if step is None:
            step = plan.get(safe_snake_case(key))  # any other casing from_dict accepts
            if step is None:
                continue  # a field a newer producer added
        if item is None:
            continue
        attribute, read, repeated = step
        if repeated:
            if not isinstance(item, list):
                raise TypeError(f"{cls.__name__}.{attribute}: expected a list")
            fields[attribute] = [read(one) for one in item]
        else:
            fields[attribute] = read(item)
    return cls(**fields)


def _reads_itself(cls: type[betterproto2.Message]) -> bool:
    """A well-known type (Any, Timestamp...) with a JSON form of its own."""
    own: Any = cast(Any, cls).from_dict.__func__
    return own is not cast(Any, betterproto2.Message).from_dict.__func__


def _compile(cls: type[betterproto2.Message]) -> _Plan:
    hints: dict[str, Any] = cls._type_hints()
    fields: dict[str, Any] = cast(Any, cls)._betterproto.meta_by_field_name
    plan: _Plan = {}
    for name, meta in fields.items():
        hint = hints[name]
        if meta.proto_type == TYPE_MAP:
            read: Read = _map_reader(cls, name, meta)
            repeated = False
        else:
            if meta.repeated or meta.optional:
                hint = hint.__args__[0]
            read, repeated = _reader(meta, hint), bool(meta.repeated)
        step = (name, read, repeated)
        plan[betterproto2.Casing.CAMEL(name).rstrip("_")] = step
        plan[name] = step
    return plan


def _reader(meta: Any, hint: Any) -> Read:
    kind = meta.proto_type
    if kind == TYPE_STRING:
        return _string
    if kind == TYPE_BOOL:
        return _boolean
    if kind in _SIGNED:
        return _integer
    if kind in _UNSIGNED:
        return _unsigned
    if kind == TYPE_MESSAGE and meta.unwrap is None and not _reads_itself(hint):

        def message(value: Any) -> Any:
            return from_json_dict(hint, value)

        return message
    if kind == TYPE_MESSAGE and (meta.unwrap() if meta.unwrap else hint) is Timestamp:
        return _timestamp_reader(meta, hint)

    def converted(value: Any) -> Any:
        # enums, floats, bytes, Timestamp and other wrapped types: betterproto2's own
        return _value_from_dict(value, meta, hint, True)

    return converted


def _timestamp_reader(meta: Any, hint: Any) -> Read:
    """What ``Timestamp.from_dict`` (and unwrapping, for a ``datetime`` field)
    gives, for the usual spelling read by ``fromisoformat``."""
    unwrap = meta.unwrap is not None

    def timestamp(value: Any) -> Any:
        if type(value) is str and _RFC3339.fullmatch(value):
            # its zone moved to UTC, as ``Timestamp.from_dict`` does
            message = Timestamp.from_datetime(datetime.fromisoformat(value))
            return message.to_wrapped() if unwrap else message
        return _value_from_dict(value, meta, hint, True)

    return timestamp


def _map_reader(cls: type[betterproto2.Message], name: str, meta: Any) -> Read:
    key_meta, value_meta = meta.map_meta
    key_hint, value_hint = cast(Any, cls._type_hints()[name]).__args__
    read_key, read_value = _reader(key_meta, key_hint), _reader(value_meta, value_hint)

    def mapping(value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise TypeError(f"{name}: expected an object")
        return {read_key(k): read_value(v) for k, v in value.items()}

    return mapping


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


def _integer(value: Any) -> int:
    """proto3 JSON integers: a number, or (64-bit as rendered) a decimal string."""
    if isinstance(value, bool):
        raise TypeError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value)  # ValueError for anything but an integer
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _unsigned(value: Any) -> int:
    number = _integer(value)
    if number < 0:
        raise ValueError(f"expected an unsigned integer, got {number}")
    return number
