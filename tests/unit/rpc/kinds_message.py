"""A message type with every field kind the generated ones lack: packed
scalars, fixed widths, zigzag, maps, enums, a oneof, recursion."""

# betterproto2 fields are dataclass ``field()`` calls, as in generated code
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import betterproto2

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.google import protobuf as wkt


class Shade(betterproto2.Enum):
    NONE = 0
    DARK = 1
    LIGHT = 2


@dataclass(eq=False, repr=False)
class Kinds(betterproto2.Message):
    # fields 1-15 single scalars, 21-35 repeated scalars (in SCALAR_TYPES order)
    bool_: bool = betterproto2.field(1, "bool")
    int32: int = betterproto2.field(2, "int32")
    int64: int = betterproto2.field(3, "int64")
    uint32: int = betterproto2.field(4, "uint32")
    uint64: int = betterproto2.field(5, "uint64")
    sint32: int = betterproto2.field(6, "sint32")
    sint64: int = betterproto2.field(7, "sint64")
    double: float = betterproto2.field(8, "double")
    float_: float = betterproto2.field(9, "float")
    fixed32: int = betterproto2.field(10, "fixed32")
    fixed64: int = betterproto2.field(11, "fixed64")
    sfixed32: int = betterproto2.field(12, "sfixed32")
    sfixed64: int = betterproto2.field(13, "sfixed64")
    string: str = betterproto2.field(14, "string")
    bytes_: bytes = betterproto2.field(15, "bytes")
    bools: list[bool] = betterproto2.field(21, "bool", repeated=True)
    int32s: list[int] = betterproto2.field(22, "int32", repeated=True)
    int64s: list[int] = betterproto2.field(23, "int64", repeated=True)
    uint32s: list[int] = betterproto2.field(24, "uint32", repeated=True)
    uint64s: list[int] = betterproto2.field(25, "uint64", repeated=True)
    sint32s: list[int] = betterproto2.field(26, "sint32", repeated=True)
    sint64s: list[int] = betterproto2.field(27, "sint64", repeated=True)
    doubles: list[float] = betterproto2.field(28, "double", repeated=True)
    floats: list[float] = betterproto2.field(29, "float", repeated=True)
    fixed32s: list[int] = betterproto2.field(30, "fixed32", repeated=True)
    fixed64s: list[int] = betterproto2.field(31, "fixed64", repeated=True)
    sfixed32s: list[int] = betterproto2.field(32, "sfixed32", repeated=True)
    sfixed64s: list[int] = betterproto2.field(33, "sfixed64", repeated=True)
    strings: list[str] = betterproto2.field(34, "string", repeated=True)
    bytess: list[bytes] = betterproto2.field(35, "bytes", repeated=True)
    shade: Shade = betterproto2.field(40, "enum", default_factory=lambda: Shade.NONE)
    shades: list[Shade] = betterproto2.field(41, "enum", repeated=True)
    counts: dict[str, int] = betterproto2.field(
        42, "map", map_meta=betterproto2.map_meta("string", "int32")
    )
    choice_text: str | None = betterproto2.field(43, "string", group="choice", optional=True)
    choice_number: int | None = betterproto2.field(44, "int64", group="choice", optional=True)
    child: Kinds | None = betterproto2.field(45, "message", optional=True)
    children: list[Kinds] = betterproto2.field(46, "message", repeated=True)
    money: pb_common.Money | None = betterproto2.field(47, "message", optional=True)
    at: datetime | None = betterproto2.field(
        48, "message", unwrap=lambda: wkt.Timestamp, optional=True
    )
    maybe: int | None = betterproto2.field(2047, "int32", optional=True)  # a 2-byte key


@dataclass(eq=False, repr=False)
class Initialized(betterproto2.Message):
    """A message whose construction does more than set its fields' defaults."""

    name: str = betterproto2.field(1, "string")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.initialized = True
