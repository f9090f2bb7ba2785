"""The fast codec agrees with betterproto2 on every generated message type:
the same bytes out, the same messages (or the same error) in."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import betterproto2
import pytest

import ec_recommend._gen as generated
from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.platform.rpc.codec import FastProtoCodec, decode, encode


def message_types() -> list[type[betterproto2.Message]]:
    found: dict[str, type[betterproto2.Message]] = {}
    for module_info in pkgutil.walk_packages(generated.__path__, generated.__name__ + "."):
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, betterproto2.Message) and cls is not betterproto2.Message:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


SCALARS: dict[str, Any] = {
    "string": lambda r: r.choice(["", "a", "ワイヤレス", "x" * 300]),
    "bytes": lambda r: r.choice([b"", b"\x00\xff", bytes(200)]),
    "bool": lambda r: r.choice([True, False]),
    "int32": lambda r: r.choice([0, 1, -1, 300, -(2**31), 2**31 - 1]),
    "int64": lambda r: r.choice([0, 1, -1, 19800, -(2**63), 2**63 - 1]),
    "uint32": lambda r: r.choice([0, 1, 2**32 - 1]),
    "uint64": lambda r: r.choice([0, 1, 2**64 - 1]),
    "sint32": lambda r: r.choice([0, -1, 2**31 - 1]),
    "sint64": lambda r: r.choice([0, -1, 2**63 - 1]),
    "double": lambda r: r.choice([0.0, 1.5, -2.25]),
    "float": lambda r: r.choice([0.0, 1.5]),
    "fixed32": lambda r: r.choice([0, 7]),
    "fixed64": lambda r: r.choice([0, 7]),
    "sfixed32": lambda r: r.choice([0, -7]),
    "sfixed64": lambda r: r.choice([0, -7]),
}


def value_for(cls: type[Any], name: str, meta: Any, rng: random.Random, depth: int) -> Any:
    if meta.map_meta is not None:
        key_meta, value_meta = meta.map_meta
        return {
            SCALARS[key_meta.proto_type](rng): SCALARS[value_meta.proto_type](rng)
            for _ in range(rng.randint(0, 3))
            if value_meta.proto_type in SCALARS
        }
    if meta.repeated:
        return [single(cls, name, meta, rng, depth) for _ in range(rng.randint(0, 3))]
    if meta.optional and rng.random() < 0.3:
        return None
    return single(cls, name, meta, rng, depth)


def single(cls: type[Any], name: str, meta: Any, rng: random.Random, depth: int) -> Any:
    if meta.proto_type == "enum":
        return rng.choice(list(cls._betterproto.cls_by_field[name]))
    if meta.proto_type == "message":
        wrapper = meta.unwrap() if meta.unwrap is not None else None
        if wrapper is not None and wrapper.__name__ == "Timestamp":
            return datetime(2026, 1, 2, 3, 4, 5, rng.choice([0, 123456]), tzinfo=UTC)
        if wrapper is not None and wrapper.__name__ == "Duration":
            return timedelta(seconds=rng.randint(0, 100), microseconds=rng.randint(0, 999999))
        if wrapper is not None:
            inner = wrapper._betterproto.meta_by_field_name["value"]
            return SCALARS[inner.proto_type](rng)
        if depth > 3:
            return None
        return sample(cls._betterproto.cls_by_field[name], rng, depth + 1)
    return SCALARS[meta.proto_type](rng)


def sample(cls: type[Any], rng: random.Random, depth: int = 0) -> Any:
    values = {}
    groups_seen: set[str] = set()
    for name, meta in cls._betterproto.meta_by_field_name.items():
        if meta.group is not None:
            if meta.group in groups_seen or rng.random() < 0.5:
                continue  # at most one member of a oneof is set
            groups_seen.add(meta.group)
        values[name] = value_for(cls, name, meta, rng, depth)
    return cls(**values)


TYPES = message_types()


def test_every_generated_module_is_covered() -> None:
    assert pb.Product in TYPES and len(TYPES) > 50


@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.__qualname__)
def test_bytes_equal_betterproto2s(message_type: type[betterproto2.Message]) -> None:
    rng = random.Random(message_type.__qualname__)
    assert encode(message_type()) == bytes(message_type())
    for _ in range(25):
        message = sample(message_type, rng)
        assert encode(message) == bytes(message), message


def test_unknown_fields_are_kept() -> None:
    parsed = pb_common.Money.parse(
        bytes(pb_common.Money(amount=5, currency="JPY")) + b"\xa0\x06\x01"
    )
    assert encode(parsed) == bytes(parsed)


def test_the_codec_refuses_a_message_of_another_type() -> None:
    codec = FastProtoCodec()
    with pytest.raises(TypeError):
        codec.encode(pb_common.Money(amount=1), pb.Product)
    product = pb.Product(id="p", stock_quantity=2)
    assert pb.Product.parse(codec.encode(product, pb.Product)) == product


def outcome(parse: Any, data: bytes) -> Any:
    try:
        return parse(data)
    except Exception as exc:  # the error type itself is what gets compared
        return type(exc)


@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.__qualname__)
def test_decoding_equals_betterproto2s(message_type: type[betterproto2.Message]) -> None:
    rng = random.Random("decode" + message_type.__qualname__)
    assert decode(b"", message_type) == message_type()
    for _ in range(25):
        data = bytes(sample(message_type, rng))
        assert decode(data, message_type) == message_type.parse(data)
        # damaged input: truncated, a flipped byte, trailing garbage
        cut = rng.randint(0, max(len(data) - 1, 0))
        flipped = bytearray(data or b"\x00")
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        for damaged in (data[:cut], bytes(flipped), data + bytes([rng.randrange(256)])):
            expected = outcome(message_type.parse, damaged)
            assert outcome(lambda d: decode(d, message_type), damaged) == expected, damaged


def test_unknown_fields_survive_decoding() -> None:
    data = bytes(pb_common.Money(amount=5, currency="JPY")) + b"\xa0\x06\x01"
    decoded = decode(data, pb_common.Money)
    assert decoded == pb_common.Money.parse(data) and bytes(decoded) == data
