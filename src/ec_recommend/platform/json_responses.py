"""botocore's parse of a JSON-protocol response, with the shape walked once.

For every response (SQS's ReceiveMessage, DeleteMessageBatch, ...)
botocore's ``JSONParser`` walks the output shape alongside the JSON: per
node a ``getattr`` for the handler, per member its serialization dict, one
call per string. The walk only depends on the shape, so ``ShapeReader``
turns each output shape into nested closures once (per client, per shape)
that build the same result: the same members under the same names, blobs
and timestamps through the parser's own converters, the rest as parsed,
nulls dropped from structures and kept in lists. A tagged union, and a
shape met again inside itself, are left to botocore's walk.

The body is still parsed by botocore's ``json.loads`` (orjson would save
~15 us on ten messages, and reads an integer past 64 bits as a float).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiobotocore.parsers import PROTOCOL_PARSERS, AioJSONParser, AioResponseParserFactory

Read = Callable[[Any], Any]

_SHAPES_PER_CLIENT = 256  # output and error shapes read; a handful in practice


class ShapeReader:
    """Readers of JSON values for shapes, each built once, for one parser's converters."""

    def __init__(self, parse_shape: Callable[[Any, Any], Any], blob: Read, timestamp: Read):
        self._parse_shape = parse_shape  # botocore's walk, for what is not compiled
        self._blob = blob
        self._timestamp = timestamp
        self._readers: dict[Any, Read | None] = {}
        self._building: set[str] = set()  # names: a shape met again is a new object

    def reader(self, shape: Any) -> Read:
        """What ``parse_shape(shape, value)`` returns, as a function of ``value``."""
        read = self._reader(shape)
        return _identity if read is None else read

    def _reader(self, shape: Any) -> Read | None:
        """``None`` for a shape whose value is returned as it is."""
        if shape in self._readers:
            return self._readers[shape]
        if shape.name in self._building:  # recursive: botocore walks that part
            return lambda value: self._parse_shape(shape, value)
        self._building.add(shape.name)
        try:
            read = self._build(shape)
        finally:
            self._building.discard(shape.name)
        self._readers[shape] = read
        return read

    def _build(self, shape: Any) -> Read | None:
        kind = shape.type_name
        if kind == "structure":
            if shape.is_document_type:
                return None
            if shape.is_tagged_union:
                return lambda value: self._parse_shape(shape, value)
            return _structure_reader(
                [
                    (name, member.serialization.get("name", name), self._reader(member))
                    for name, member in shape.members.items()
                ]
            )
        if kind == "list":
            return _list_reader(self._reader(shape.member))
        if kind == "map":
            return _map_reader(self._reader(shape.key), self._reader(shape.value))
        if kind == "blob":
            return self._blob
        if kind == "timestamp":
            return self._timestamp
        return None


def _identity(value: Any) -> Any:
    return value


def _structure_reader(members: list[tuple[str, str, Read | None]]) -> Read:
    def read(value: Any) -> Any:
        if value is None:
            return None
        parsed = {}
        for name, json_name, read_member in members:
            raw = value.get(json_name)
            if raw is not None:
                parsed[name] = raw if read_member is None else read_member(raw)
        return parsed

    return read


def _list_reader(read_item: Read | None) -> Read:
    if read_item is None:
        return list
    return lambda value: [None if item is None else read_item(item) for item in value]


def _map_reader(read_key: Read | None, read_value: Read | None) -> Read:
    key = _identity if read_key is None else read_key
    item = _identity if read_value is None else read_value
    return lambda value: {key(k): item(v) for k, v in value.items()}


class TunedJSONParser(AioJSONParser):  # type: ignore[misc]  # aiobotocore is untyped
    """``AioJSONParser`` whose bodies are read by one client's compiled shapes."""

    def __init__(self, readers: dict[Any, Read], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shape_readers = readers

    def _handle_json_body(self, raw_body: Any, shape: Any) -> Any:
        # The output shape is the operation model's, kept for the client's life.
        read = self._shape_readers.get(shape)
        if read is None:
            reader = ShapeReader(self._parse_shape, self._blob_parser, self._timestamp_parser)
            read = reader.reader(shape)
            if len(self._shape_readers) < _SHAPES_PER_CLIENT:
                self._shape_readers[shape] = read
        return read(self._parse_body_as_json(raw_body))


class TunedParserFactory(AioResponseParserFactory):  # type: ignore[misc]
    """The client's parser factory, with its JSON parser tuned; other protocols as they were.

    The compiled readers hold the converters of the first parser that built
    them: the factory's defaults, the same for every parser it makes.
    """

    def __init__(self, original: Any) -> None:
        super().__init__()
        self._original = original
        self._defaults = original._defaults  # the same dict: later defaults apply too
        self._readers: dict[Any, Read] = {}
        self._tunes_json = (
            type(original) is AioResponseParserFactory
            and PROTOCOL_PARSERS.get("json") is AioJSONParser
        )

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name != "json" or not self._tunes_json:
            return self._original.create_parser(protocol_name)
        return TunedJSONParser(self._readers, **self._defaults)
