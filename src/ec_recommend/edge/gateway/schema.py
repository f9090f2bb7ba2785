"""Request schemas, declared once: they validate input and describe it in OpenAPI.

A schema turns untrusted JSON (or query strings) into plain Python values or
raises ``InvalidArgument`` naming the offending field, so no malformed value
ever reaches a message constructor or a service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ec_recommend.platform.errors import InvalidArgument

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# What every string refuses, stated in the document of strings without a
# stricter pattern of their own.
NO_NUL = "^[^\\u0000]*$"


def _fail(path: str, message: str) -> InvalidArgument:
    name = path or "body"
    return InvalidArgument(f"{name}: {message}", field=name)


class Schema:
    """One JSON value's rules."""

    description: str = ""

    def validate(self, value: object, path: str) -> Any:
        raise NotImplementedError

    def parse_text(self, text: str, path: str) -> Any:
        """Query-string form of the value."""
        return self.validate(text, path)

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def _with_description(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.description:
            schema["description"] = self.description
        return schema


@dataclass(frozen=True)
class String(Schema):
    """A string; ``patterns`` are regular expressions it must each contain
    (JSON Schema's unanchored ``pattern``), ``hint`` says what they mean;
    ``format`` (email, uri, uuid) is stated in the document."""

    min_length: int = 0
    max_length: int = 1000
    enum: tuple[str, ...] = ()
    description: str = ""
    patterns: tuple[str, ...] = ()
    hint: str = ""
    format: str = ""

    def validate(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise _fail(path, "expected a string")
        if "\x00" in value:
            raise _fail(path, "must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _fail(path, "must be valid UTF-8") from None
        if len(value) < self.min_length:
            raise _fail(path, f"must be at least {self.min_length} characters")
        if len(value) > self.max_length:
            raise _fail(path, f"must be at most {self.max_length} characters")
        if self.enum and value not in self.enum:
            raise _fail(path, f"must be one of {', '.join(self.enum)}")
        for pattern in self.patterns:
            if not _compiled(pattern).search(value):
                raise _fail(path, f"must be {self.hint or 'of the documented pattern'}")
        return value

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "maxLength": self.max_length}
        if self.min_length:
            schema["minLength"] = self.min_length
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.format:
            schema["format"] = self.format
        first, *more = self.patterns or (NO_NUL,)
        if not self.enum:
            schema["pattern"] = first
            if more:
                schema["allOf"] = [{"pattern": pattern} for pattern in more]
        return self._with_description(schema)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(pattern)
    return compiled


@dataclass(frozen=True)
class Integer(Schema):
    minimum: int = 0
    maximum: int = INT32_MAX
    description: str = ""

    def validate(self, value: object, path: str) -> int:
        # bool is an int in Python but not in JSON
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _fail(path, "expected an integer")
        if not self.minimum <= value <= self.maximum:
            raise _fail(path, f"must be between {self.minimum} and {self.maximum}")
        return value

    def parse_text(self, text: str, path: str) -> int:
        stripped = text.strip()
        if not stripped.lstrip("-").isdigit() or len(stripped) > 20:
            raise _fail(path, "expected an integer")
        return self.validate(int(stripped), path)

    def json_schema(self) -> dict[str, Any]:
        schema = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        return self._with_description(schema)


@dataclass(frozen=True)
class Boolean(Schema):
    description: str = ""
    only: bool | None = None  # the one value allowed (a flag that is only ever set)

    def validate(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise _fail(path, "expected true or false")
        if self.only is not None and value is not self.only:
            raise _fail(path, f"may only be {str(self.only).lower()}")
        return value

    def parse_text(self, text: str, path: str) -> bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise _fail(path, "expected true or false")

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "boolean"}
        if self.only is not None:
            schema["const"] = self.only
        return self._with_description(schema)


@dataclass(frozen=True)
class Array(Schema):
    items: Schema
    max_items: int = 100
    min_items: int = 0
    description: str = ""
    # a field of the (object) items that no two items share, e.g. product_id
    unique_by: str = ""

    def validate(self, value: object, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise _fail(path, "expected an array")
        if not self.min_items <= len(value) <= self.max_items:
            raise _fail(path, f"must have {self.min_items} to {self.max_items} items")
        items = [self.items.validate(item, f"{path}[{i}]") for i, item in enumerate(value)]
        if self.unique_by:
            seen: set[str] = set()
            for i, item in enumerate(items):
                key = str(item.get(self.unique_by, "")).lower()  # ids in any case
                if key in seen:
                    raise _fail(f"{path}[{i}].{self.unique_by}", "is given more than once")
                seen.add(key)
        return items

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "array",
            "items": self.items.json_schema(),
            "maxItems": self.max_items,
        }
        if self.min_items:
            schema["minItems"] = self.min_items
        return self._with_description(schema)


@dataclass(frozen=True)
class StringMap(Schema):
    """A JSON object of string values (proto ``map<string, string>``)."""

    values: String = String()
    max_entries: int = 50
    key_max_length: int = 100
    description: str = ""

    def validate(self, value: object, path: str) -> dict[str, str]:
        if not isinstance(value, dict):
            raise _fail(path, "expected an object")
        if len(value) > self.max_entries:
            raise _fail(path, f"must have at most {self.max_entries} entries")
        key_schema = String(min_length=1, max_length=self.key_max_length)
        result: dict[str, str] = {}
        for key, item in value.items():
            key_schema.validate(key, f"{path}.{key}")
            result[key] = self.values.validate(item, f"{path}.{key}")
        return result

    def json_schema(self) -> dict[str, Any]:
        schema = {
            "type": "object",
            "propertyNames": String(1, self.key_max_length).json_schema(),
            "additionalProperties": self.values.json_schema(),
            "maxProperties": self.max_entries,
        }
        return self._with_description(schema)


@dataclass(frozen=True)
class Object(Schema):
    """A JSON object with known fields; unknown fields are rejected."""

    fields: Mapping[str, Schema]
    required: Sequence[str] = ()
    description: str = ""
    # At least one of these must be present (e.g. {delta} or {quantity}).
    one_of: Sequence[Sequence[str]] = field(default=())
    # Fields where JSON null is meaningful (kept as None), e.g. "remove the sale price".
    nullable: Sequence[str] = field(default=())
    # (a, b): when both are given, a <= b; dotted paths reach into objects
    # ("sale_price.amount"). JSON Schema cannot compare two values, so the
    # document states these as ``x-constraints``.
    at_most: Sequence[tuple[str, str]] = field(default=())

    def validate(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(path, "expected a JSON object")
        prefix = f"{path}." if path else ""
        for name in value:
            if name not in self.fields:
                raise _fail(f"{prefix}{name}", "unknown field")
        for name in self.required:
            if name not in value:
                raise _fail(f"{prefix}{name}", "is required")
        result: dict[str, Any] = {}
        for name, item in value.items():
            if item is None:
                # null is a value only where a field gives it a meaning; elsewhere
                # it is a mistake, not "absent" (a null quantity is not 1)
                if name not in self.nullable:
                    raise _fail(f"{prefix}{name}", "must not be null")
                result[name] = None
                continue
            result[name] = self.fields[name].validate(item, f"{prefix}{name}")
        for group in self.one_of:
            present = [name for name in group if name in result]
            if len(present) != 1:
                raise _fail(f"{prefix}{group[0]}", f"give exactly one of {', '.join(group)}")
        self._check_order(result, prefix)
        return result

    def _check_order(self, values: Mapping[str, Any], prefix: str) -> None:
        for low, high in self.at_most:
            a, b = _dotted(values, low), _dotted(values, high)
            if a is not None and b is not None and a > b:
                raise _fail(f"{prefix}{low}", f"must not exceed {high}")

    def constraints(self, location: str) -> list[dict[str, Any]]:
        """``x-constraints`` entries: ``{"at_most": ["body.a", "body.b"]}`` (a <= b) and
        ``{"unique": ["body.items", "product_id"]}`` (no two items share it)."""
        rules: list[dict[str, Any]] = [
            {"at_most": [f"{location}.{a}", f"{location}.{b}"]} for a, b in self.at_most
        ]
        for name, schema in self.fields.items():
            if isinstance(schema, Array) and schema.unique_by:
                rules.append({"unique": [f"{location}.{name}", schema.unique_by]})
        return rules

    def parse_query(self, query: Mapping[str, str]) -> dict[str, Any]:
        """Validate query parameters (each given at most once) against the fields."""
        result: dict[str, Any] = {}
        for name, text in query.items():
            schema = self.fields.get(name)
            if schema is None:
                raise _fail(name, "unknown query parameter")
            result[name] = schema.parse_text(text, name)
        for name in self.required:
            if name not in result:
                raise _fail(name, "is required")
        self._check_order(result, "")
        return result

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                name: _maybe_null(s.json_schema(), name in self.nullable)
                for name, s in self.fields.items()
            },
            "additionalProperties": False,
        }
        if self.required:
            schema["required"] = list(self.required)
        if self.one_of:
            schema["oneOf"] = [{"required": [name]} for group in self.one_of for name in group]
        return self._with_description(schema)


def _dotted(values: Mapping[str, Any], path: str) -> Any:
    value: Any = values
    for name in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _maybe_null(schema: dict[str, Any], nullable: bool) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]} if nullable else schema


MONEY = Object(
    {
        "amount": Integer(0, 10**12, description="minor units (yen)"),
        "currency": String(enum=("JPY",), max_length=3),
    },
    required=("amount",),
    description="money in minor units",
)

UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
ID = String(36, 36, patterns=(UUID_PATTERN,), hint="an id (a UUID)", format="uuid")
_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# What the services accept as an email (user domain, Cognito accounts).
EMAIL = String(
    3,
    254,
    patterns=(
        f"^{_ATOM}(\\.{_ATOM})*@{_LABEL}(\\.{_LABEL})+$",  # RFC 5322 dot-atom @ host name
        "^[^@]{1,64}@",
    ),
    hint="an email address",
    format="email",
)
# RFC 3986: path, query and fragment of pchars (percent-encoded where not plain)
_PCHAR = "([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_HTTP_URL = (
    "https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?"
    f"(/({_PCHAR}|/)*)?(\\?({_PCHAR}|[/?])*)?(#({_PCHAR}|[/?])*)?"
)
HTTP_URL = String(1, 2048, patterns=(f"^{_HTTP_URL}$",), hint="an http(s) URL", format="uri")
HTTP_URL_OR_EMPTY = String(0, 2048, patterns=(f"^({_HTTP_URL})?$",), hint="an http(s) URL or empty")
# Visible ASCII, at most the order service's 128 (keys are stored with the order).
IDEMPOTENCY_KEY = String(1, 128, patterns=("^[\\x21-\\x7e]+$",), hint="visible ASCII")
# Seller ids are chosen by the identity provider, not UUIDs.
SELLER_ID = String(1, 64, patterns=("^[^\\u0000-\\u001f\\u007f-\\u009f]*$",), hint="printable")
PATH_PARAMETERS: Mapping[str, Schema] = {"seller_id": SELLER_ID}


def path_parameter(name: str) -> Schema:
    """The schema of a path parameter: ids are UUIDs unless named otherwise above."""
    if name in PATH_PARAMETERS:
        return PATH_PARAMETERS[name]
    return ID if name == "id" or name.endswith("_id") else String(1, 200)


PAGE_QUERY_FIELDS: dict[str, Schema] = {
    "page": Integer(1, 1_000_000, description="1-based page number"),
    "page_size": Integer(1, 100, description="items per page (default 20, max 100)"),
    "descending": Boolean(),
}


def page_query(
    sort_by: Sequence[str], *, at_most: Sequence[tuple[str, str]] = (), **filters: Schema
) -> Object:
    """Query parameters of a list endpoint: paging, sorting, filters."""
    fields: dict[str, Schema] = dict(PAGE_QUERY_FIELDS)
    fields["sort_by"] = String(enum=tuple(sort_by), max_length=32)
    fields.update(filters)
    return Object(fields, at_most=at_most)
