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
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend._gen.google import protobuf as wkt
from ec_recommend.platform.rpc.codec import (
    FastProtoCodec,
    _blank_message,
    _varint,
    decode,
    encode,
)

from .kinds_message import Initialized, Kinds

HOT = (pb.Product, pb_order.Order, pb.ReserveStockResponse, pb.GetProductsResponse)


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
    if meta.repeated:  # (recursion stops at a None, which a list leaves out)
        items = (single(cls, name, meta, rng, depth) for _ in range(rng.randint(0, 3)))
        return [item for item in items if item is not None]
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
        same_outcome(data, message_type)
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


# -- every field kind, every wire shape -----------------------------------------
# The generated types use a few field kinds; these hand-written ones have the
# rest (packed scalars, fixed widths, zigzag, maps, enums, oneofs, recursion),
# and the fuzz below writes wire shapes ``bytes(message)`` never produces:
# unpacked repeated scalars, a field repeated, known fields with another wire
# type, unknown fields of every wire type, long varints.


KINDS_META = Kinds._betterproto.meta_by_field_name


def key_bytes(number: int, wire: int, long: bool = False) -> bytes:
    """A field's key; ``long`` spells it with a redundant continuation byte."""
    key = _varint((number << 3) | wire)
    return bytes([key[0] | 0x80, *key[1:], 0]) if long and len(key) == 1 else key


def wire_value(rng: random.Random, wire: int) -> bytes:
    if wire == 0:
        return rng.choice([b"\x00", b"\x01", b"\x96\x01", b"\xff" * 9 + b"\x01", b"\x80\x00"])
    if wire == 1:
        return bytes(rng.randrange(256) for _ in range(8))
    if wire == 5:
        return bytes(rng.randrange(256) for _ in range(4))
    payload = rng.choice([b"", b"abc", "ワ".encode(), b"\x08\x01", b"\xff\xfe"])
    return _varint(len(payload)) + payload


def field_chunks(rng: random.Random) -> list[bytes]:
    """Wire chunks for a Kinds message, each a whole field, in random shapes."""
    chunks: list[bytes] = []
    for name, meta in KINDS_META.items():
        if rng.random() < 0.6:
            continue
        value = value_for(Kinds, name, meta, rng, 2)
        number = meta.number
        if meta.repeated and meta.proto_type in betterproto2.PACKED_TYPES and rng.random() < 0.5:
            # unpacked: one field per item, as older writers send them
            for item in value:
                chunks.append(
                    betterproto2._serialize_single(
                        number, meta.proto_type, item, unwrap=meta.unwrap
                    )
                )
        else:
            chunks.append(bytes(Kinds(**{name: value})))
        if rng.random() < 0.1:  # a known field with another wire type
            wire = rng.choice([0, 1, 2, 5])
            chunks.append(key_bytes(number, wire) + wire_value(rng, wire))
    for _ in range(rng.randint(0, 2)):  # unknown fields, any wire type
        wire = rng.choice([0, 1, 2, 5])
        number = rng.choice([16, 17, 99, 3000])
        chunks.append(key_bytes(number, wire, long=rng.random() < 0.3) + wire_value(rng, wire))
    if rng.random() < 0.1:  # a known field's key spelled long
        chunks.append(key_bytes(14, 2, long=True) + b"\x01z")
    if rng.random() < 0.05:  # a group or an invalid wire type
        chunks.append(key_bytes(rng.choice([14, 99]), rng.choice([3, 4, 6, 7])))
    rng.shuffle(chunks)
    return chunks


def same_outcome(data: bytes, message_type: type[Any]) -> None:
    expected = outcome(message_type.parse, data)
    got = outcome(lambda d: decode(d, message_type), data)
    assert got == expected, data
    if isinstance(expected, betterproto2.Message):  # == leaves out unknown fields
        assert outcome(bytes, got) == outcome(bytes, expected), data
        assert got._unknown_fields == expected._unknown_fields
        assert list(vars(got)) == list(vars(expected)), "made as __init__ makes it"


@pytest.mark.parametrize("seed", range(40))
def test_every_field_kind_and_wire_shape_decodes_as_betterproto2_does(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        data = b"".join(field_chunks(rng))
        same_outcome(data, Kinds)
        if data:
            cut = rng.randrange(len(data))
            flipped = bytearray(data)
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            for damaged in (data[:cut], bytes(flipped), data + bytes([rng.randrange(256)])):
                same_outcome(damaged, Kinds)


def test_a_repeated_field_and_both_members_of_a_oneof_as_betterproto2_reads_them() -> None:
    data = (
        bytes(Kinds(choice_text="a"))
        + bytes(Kinds(choice_number=7))
        + bytes(Kinds(string="first"))
        + bytes(Kinds(string="last"))
        + bytes(Kinds(child=Kinds(int32=1)))
        + bytes(Kinds(child=Kinds(int64=2)))
    )
    decoded = decode(data, Kinds)
    assert decoded == Kinds.parse(data)
    assert (decoded.choice_text, decoded.choice_number, decoded.string) == ("a", 7, "last")
    assert decoded.child == Kinds(int64=2)  # replaced, not merged, as betterproto2 does


def test_random_bytes_decode_as_betterproto2_does() -> None:
    rng = random.Random("noise")
    for message_type in (Kinds, pb.Product, pb.GetProductsResponse):
        for _ in range(300):
            data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 24)))
            same_outcome(data, message_type)


def test_hot_messages_decode_without_betterproto2(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random("hot")
    samples = {t: bytes(sample(t, rng)) for t in HOT}
    expected = {t: t.parse(data) for t, data in samples.items()}
    for message_type in {*HOT, pb_common.Money, wkt.Timestamp, pb.ProductImage}:
        monkeypatch.setattr(message_type, "parse", None)  # any fallback would fail
    for message_type, data in samples.items():
        assert decode(data, message_type) == expected[message_type]


def test_a_damaged_nested_message_makes_the_whole_message_betterproto2s() -> None:
    inner = bytes(pb_common.Money(amount=5, currency="JPY"))[:-1]  # truncated
    data = bytes(pb.Product(id="p")) + b"\x2a" + _varint(len(inner)) + inner
    same_outcome(data, pb.Product)


def test_a_message_whose_init_does_more_is_made_by_its_init() -> None:
    assert _blank_message(Initialized) is None
    assert _blank_message(pb.Product) is not None
    decoded = decode(bytes(Initialized(name="a")), Initialized)
    assert decoded == Initialized(name="a") and decoded.initialized
