"""TunedJSONParser reads any JSON body into what botocore's JSON parser returns."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aiobotocore.parsers import AioJSONParser, AioQueryParser, AioResponseParserFactory
from botocore.model import Shape
from hypothesis import given, settings
from hypothesis import strategies as st

from ec_recommend.platform.json_responses import TunedJSONParser, TunedParserFactory
from tests.unit.json_service import json_service

MODEL = json_service(
    {"output": {"shape": "Out"}},
    {
        "Out": {
            "type": "structure",
            "members": {
                "Items": {"shape": "ItemList"},
                "Renamed": {"shape": "String", "locationName": "wire_name"},
                "Data": {"shape": "Blob"},
                "When": {"shape": "Timestamp"},
                "Tags": {"shape": "TagMap"},
                "Doc": {"shape": "Doc"},
                "Union": {"shape": "Union"},
                "Tree": {"shape": "Node"},
                "Count": {"shape": "Integer"},
                "Flag": {"shape": "Boolean"},
                "Ratio": {"shape": "Double"},
                "Strings": {"shape": "StringList"},
                "Stamps": {"shape": "StampMap"},
            },
        },
        "ItemList": {"type": "list", "member": {"shape": "Item"}},
        "Item": {
            "type": "structure",
            "members": {
                "Id": {"shape": "String"},
                "Body": {"shape": "String", "locationName": "body"},
                "Attributes": {"shape": "AttrMap"},
            },
        },
        "AttrMap": {"type": "map", "key": {"shape": "String"}, "value": {"shape": "Attr"}},
        "Attr": {
            "type": "structure",
            "members": {
                "StringValue": {"shape": "String"},
                "BinaryValue": {"shape": "Blob"},
                "BinaryListValues": {"shape": "BlobList"},
            },
        },
        "BlobList": {"type": "list", "member": {"shape": "Blob"}},
        "StringList": {"type": "list", "member": {"shape": "String"}},
        "TagMap": {"type": "map", "key": {"shape": "String"}, "value": {"shape": "String"}},
        "StampMap": {
            "type": "map",
            "key": {"shape": "String"},
            "value": {"shape": "Timestamp"},
        },
        "Doc": {"type": "structure", "members": {}, "document": True},
        "Union": {
            "type": "structure",
            "union": True,
            "members": {"A": {"shape": "String"}, "B": {"shape": "Blob"}},
        },
        "Node": {
            "type": "structure",
            "members": {"Name": {"shape": "String"}, "Children": {"shape": "NodeList"}},
        },
        "NodeList": {"type": "list", "member": {"shape": "Node"}},
        "String": {"type": "string"},
        "Blob": {"type": "blob"},
        "Timestamp": {"type": "timestamp"},
        "Integer": {"type": "integer"},
        "Boolean": {"type": "boolean"},
        "Double": {"type": "double"},
    },
)
OUT = MODEL.operation_model("Op").output_shape


def outcome(parser: Any, body: bytes, shape: Shape = OUT) -> Any:
    """The parsed body, or the error botocore's parse raised."""
    try:
        return parser._handle_json_body(body, shape)
    except Exception as error:
        return type(error), str(error)


def assert_same(body: bytes) -> None:
    expected = outcome(AioJSONParser(), body)
    assert outcome(TunedJSONParser({}), body) == expected


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
blobs = st.binary(max_size=6).map(lambda b: base64.b64encode(b).decode())
stamps = st.one_of(
    st.integers(0, 2**31), st.floats(0, 2e9), st.just("2026-12-01T06:00:00Z"), st.just("junk")
)


def values(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped like ``shape``, now and then null or of another shape altogether."""
    kind = shape.type_name
    if depth > 3:
        return st.none()
    if kind == "structure" and shape.is_document_type:
        made: st.SearchStrategy[Any] = json_values
    elif kind == "structure":
        members = shape.members
        optional = {
            member.serialization.get("name", name): values(member, depth + 1)
            for name, member in members.items()
        }
        made = st.fixed_dictionaries({}, optional={**optional, "Unknown": json_values})
    elif kind == "list":
        made = st.lists(st.none() | values(shape.member, depth + 1), max_size=3)
    elif kind == "map":
        made = st.dictionaries(st.text(max_size=3), values(shape.value, depth + 1), max_size=3)
    elif kind == "blob":
        made = blobs
    elif kind == "timestamp":
        made = stamps
    else:
        made = json_scalars
    return st.one_of(made, made, made, st.none(), json_scalars)


@settings(max_examples=300, deadline=None)
@given(value=values(OUT))
def test_any_body_parses_the_same(value: Any) -> None:
    assert_same(json.dumps(value).encode())


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b"not json",
        b'{"Items": [null, {"Id": "a", "body": "b", "Body": "ignored"}]}',
        b'{"Data": "not base64!"}',
        b'{"Union": {"A": "a"}}',
        b'{"Union": {"Other": 1}}',
        b'{"Union": {"A": "a", "B": "Yg=="}}',
        b'{"Tree": {"Name": "r", "Children": [{"Name": "c", "Children": [{"Name": "g"}]}]}}',
        b'{"Stamps": {"a": 0, "b": "2026-12-01T06:00:00Z"}, "When": 1764568800.5}',
        b'{"Count": 123456789012345678901234567890, "Ratio": NaN, "Flag": false}',
        b'{"Items": {"not": "a list"}}',
        b'{"Items": "abc"}',
    ],
)
def test_odd_bodies_parse_or_fail_the_same(body: bytes) -> None:
    assert_same(body)


def test_each_shape_is_compiled_once_per_client() -> None:
    readers: dict[Any, Any] = {}
    body = b'{"Items": [{"Id": "a"}]}'
    first = TunedJSONParser(readers)._handle_json_body(body, OUT)
    read = readers[OUT]
    assert TunedJSONParser(readers)._handle_json_body(body, OUT) == first
    assert readers == {OUT: read}


def test_the_factory_tunes_json_only() -> None:
    factory = TunedParserFactory(AioResponseParserFactory())
    assert type(factory.create_parser("json")) is TunedJSONParser
    assert type(factory.create_parser("query")) is AioQueryParser
