"""proto_json renders what betterproto2's ``to_dict`` renders, for every message we
generate, and the envelope built with it decodes back to the same event."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import betterproto2
import pytest

import ec_recommend._gen
from ec_recommend.platform.events import proto_json
from ec_recommend.platform.events.envelope import (
    EVENT_TYPES,
    MalformedEvent,
    decode,
    encode,
    new_encoded_event,
    new_event,
)
from ec_recommend.platform.events.proto_json_read import from_json_dict


def generated_messages() -> list[type[betterproto2.Message]]:
    found: list[type[betterproto2.Message]] = []
    for module_info in pkgutil.walk_packages(ec_recommend._gen.__path__, "ec_recommend._gen."):
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, betterproto2.Message)
                and value.__module__ == module.__name__
                and dataclasses.is_dataclass(value)
            ):
                found.append(value)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


MESSAGES = generated_messages()
WELL_KNOWN = {"Any", "Timestamp"}  # rendered by betterproto2's own to_dict overrides


def sample_value(meta: Any, hint: Any, depth: int, n: int) -> Any:
    """A value of one field, never its default (so every field is rendered)."""
    kind = meta.proto_type
    if kind == betterproto2.TYPE_MESSAGE:
        if meta.unwrap is not None:  # Timestamp: with and without microseconds
            return datetime(2026, 4, 1, 9, 30, tzinfo=UTC) + timedelta(microseconds=n * 123457)
        if hint.__name__ in WELL_KNOWN or depth >= 3:
            return hint()
        return populated(hint, depth + 1)
    if kind == betterproto2.TYPE_STRING:
        return f"値-{n}"
    if kind == betterproto2.TYPE_BOOL:
        return True
    if kind in betterproto2.INT_64_TYPES:
        return 2**40 + n
    if kind in (betterproto2.TYPE_DOUBLE, betterproto2.TYPE_FLOAT):
        return 0.25 + n
    if kind == betterproto2.TYPE_BYTES:
        return bytes([n, 255])
    if kind == betterproto2.TYPE_ENUM:
        return hint(max(member.value for member in hint))
    return 7 + n  # 32-bit integers


def populated(cls: type[betterproto2.Message], depth: int = 0) -> betterproto2.Message:
    hints = cls._type_hints()
    values: dict[str, Any] = {}
    groups: set[str] = set()
    for name, meta in cls._betterproto.meta_by_field_name.items():  # type: ignore[attr-defined]
        if meta.group and not meta.optional:
            if meta.group in groups:
                continue  # one member of a oneof
            groups.add(meta.group)
        hint = hints[name]
        if meta.proto_type == betterproto2.TYPE_MAP:
            key_hint, value_hint = hint.__args__
            key = sample_value(meta.map_meta[0], key_hint, depth, 1)
            values[name] = {key: sample_value(meta.map_meta[1], value_hint, depth, 2)}
        elif meta.repeated:
            item = hint.__args__[0]
            values[name] = [sample_value(meta, item, depth, n) for n in (1, 2)]
        else:
            if meta.optional:
                hint = hint.__args__[0]
            values[name] = sample_value(meta, hint, depth, 3)
    return cls(**values)


@pytest.mark.parametrize("cls", [c for c in MESSAGES if c.__name__ not in WELL_KNOWN], ids=str)
def test_every_generated_message_renders_as_to_dict_does(cls: type[betterproto2.Message]) -> None:
    for message in (populated(cls), cls()):
        expected = message.to_dict()
        rendered = proto_json.to_json_dict(message)
        assert rendered == expected
        # same keys in the same order: the JSON text is the same, byte for byte
        assert json.dumps(rendered) == json.dumps(expected)


def test_optional_fields_set_to_their_default_are_rendered_as_to_dict_does() -> None:
    from ec_recommend._gen.ecommerce import user as pb_user

    for cls in (c for c in MESSAGES if c.__module__ == pb_user.__name__):
        fields = cls._betterproto.meta_by_field_name  # type: ignore[attr-defined]
        for name, meta in fields.items():
            if meta.optional and meta.proto_type == betterproto2.TYPE_STRING:
                message = cls(**{name: ""})
                assert proto_json.to_json_dict(message) == message.to_dict()


def test_timestamps_in_other_zones_render_in_utc_and_naive_ones_are_refused() -> None:
    from ec_recommend._gen.ecommerce import order as pb_order

    tokyo = datetime(2026, 4, 1, 18, 0, 0, 500000, tzinfo=timezone(timedelta(hours=9)))
    order = pb_order.Order(id="o", created_at=tokyo)
    assert proto_json.to_json_dict(order) == order.to_dict()
    assert proto_json.to_json_dict(order)["createdAt"] == "2026-04-01T09:00:00.500Z"
    with pytest.raises(ValueError):
        proto_json.to_json_dict(pb_order.Order(id="o", created_at=datetime(2026, 4, 1)))


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_round_trips_and_encodes_as_before(event_type: str) -> None:
    data = populated(EVENT_TYPES[event_type])
    event, body = new_encoded_event(event_type, data, source="s", metadata={"traceparent": "00"})
    assert body == encode(event)
    assert decode(body) == event
    # the body is what the envelope was before: data rendered by to_dict
    before = json.loads(body)
    assert before["data"] == data.to_dict()
    assert json.dumps(before["data"]) == json.dumps(data.to_dict())
    assert decode(encode(new_event(event_type, data, source="s"))).data == data


def test_new_encoded_event_checks_what_new_event_checks() -> None:
    with pytest.raises(MalformedEvent):
        new_encoded_event("order.paid", EVENT_TYPES["order.paid"](), source="s")
    with pytest.raises(TypeError):
        new_encoded_event("order.paid", EVENT_TYPES["user.created"](user_id="u"), source="s")


# google.rpc.Status holds Any values, which betterproto2 reads back only for registered types.
READABLE = [c for c in MESSAGES if c.__name__ not in WELL_KNOWN and c.__name__ != "Status"]


@pytest.mark.parametrize("cls", READABLE, ids=str)
def test_every_generated_message_reads_back_as_from_dict_does(
    cls: type[betterproto2.Message],
) -> None:
    for message in (populated(cls), cls()):
        rendered = message.to_dict()
        assert from_json_dict(cls, rendered) == cls.from_dict(rendered) == message
        snake = message.to_dict(casing=betterproto2.Casing.SNAKE)
        assert from_json_dict(cls, snake) == message
        with_extra = {**rendered, "addedByANewerProducer": {"x": 1}, "nulled": None}
        assert from_json_dict(cls, with_extra) == message


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"productId": 5}, TypeError),  # a number for a string
        ({"productId": "p", "stockQuantity": "many"}, ValueError),
        ({"productId": "p", "stockQuantity": True}, TypeError),
        ({"productId": "p", "stockQuantity": 1.5}, TypeError),
        ({"productId": "p", "basePrice": "free"}, TypeError),  # a string for a message
        ({"productId": "p", "basePrice": {"amount": [1]}}, TypeError),
    ],
)
def test_values_of_the_wrong_type_are_refused_as_they_are_read(
    data: dict[str, Any], error: type[Exception]
) -> None:
    from ec_recommend._gen.ecommerce import events as pb

    with pytest.raises(error):
        from_json_dict(pb.ProductCreated, data)


def test_64_bit_integers_read_from_numbers_and_strings_and_lists_must_be_lists() -> None:
    from ec_recommend._gen.ecommerce import common as pb_common
    from ec_recommend._gen.ecommerce import order as pb_order

    assert from_json_dict(pb_common.Money, {"amount": "1500"}) == pb_common.Money(amount=1500)
    assert from_json_dict(pb_common.Money, {"amount": 1500.0}) == pb_common.Money(amount=1500)
    with pytest.raises(TypeError):
        from_json_dict(pb_order.Order, {"items": {"productId": "p"}})


@pytest.mark.parametrize(
    "spelled",
    [
        "2026-12-01T10:15:16Z",
        "2026-12-01T10:15:16.1Z",
        "2026-12-01T10:15:16.123Z",
        "2026-12-01T10:15:16.123456Z",
        "2026-12-01T10:15:16.1234567Z",  # beyond microseconds: both keep six digits
        "2026-12-01T10:15:16.999999999Z",
        "2026-12-01T10:15:16.5+09:00",
        "2026-12-01T01:15:16-05:30",
        "1969-12-31T23:59:59.999999Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "2026-12-01T10:15:16+00:00",
        # other spellings take betterproto2's own way
        "2026-12-01T10:15:16z",
        "2026-12-01 10:15:16Z",
        "20261201T101516Z",
        "2026-12-01T10:15Z",
    ],
)
def test_timestamps_read_as_from_dict_reads_them(spelled: str) -> None:
    from ec_recommend._gen.ecommerce import order as pb_order

    rendered = {"id": "o1", "createdAt": spelled}
    expected = pb_order.Order.from_dict(rendered)
    read = from_json_dict(pb_order.Order, rendered)
    assert read == expected
    assert read.created_at == expected.created_at
    assert read.created_at.tzinfo == expected.created_at.tzinfo


@pytest.mark.parametrize(
    "spelled", ["2026-13-01T00:00:00Z", "2026-12-01T24:00:01Z", "0001-01-01T00:00:00+05:00", "soon"]
)
def test_timestamps_that_are_not_instants_fail_as_from_dict_fails(spelled: str) -> None:
    from ec_recommend._gen.ecommerce import order as pb_order

    rendered = {"id": "o1", "createdAt": spelled}
    with pytest.raises(Exception) as by_betterproto:
        pb_order.Order.from_dict(rendered)
    with pytest.raises(by_betterproto.type):
        from_json_dict(pb_order.Order, rendered)


def test_the_usual_timestamp_spelling_is_read_without_dateutil(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The speed this reader exists for: dateutil's isoparse costs ~30x more."""
    import dateutil.parser

    from ec_recommend._gen.ecommerce import order as pb_order

    def refuse(_: str) -> datetime:
        raise AssertionError("parsed by dateutil")

    monkeypatch.setattr(dateutil.parser, "isoparse", refuse)
    read = from_json_dict(pb_order.Order, {"createdAt": "2026-12-01T10:15:16.5+09:00"})
    assert read.created_at == datetime(2026, 12, 1, 1, 15, 16, 500000, tzinfo=UTC)
