"""botocore's parameter validation, answered quicker when the parameters are valid.

``ParamValidator.validate`` walks the input shape for every call, through a
``getattr`` and a decorated type check per value, collecting errors with
their paths; nearly every call has none. ``ShapeChecks`` compiles each input
shape once (per client) into nested closures that only answer "valid by
botocore's rules": the same container and scalar types, required and
unknown members, minimum lengths and values (a host label's implicit 1),
the same shortcut for lists of unconstrained scalars. Whatever they do not
model (documents, JSON-value headers, unions, timestamps, a shape met again
inside itself) is asked of botocore's validator for that value.

``TunedValidationDecorator`` serializes at once what the checks accept;
anything else goes through botocore's validator, which raises the same
``ParamValidationError`` it always did (or finds the parameters valid after
all). A check never accepts what botocore would refuse: the tests compare
both on generated parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ParamValidationError
from botocore.utils import is_json_value_header
from botocore.validate import ParamValidator

Check = Callable[[Any], bool]

_SHAPES_PER_CLIENT = 256  # input shapes of the operations called; a handful in practice


class ShapeChecks:
    """Checks of values against shapes, each compiled once, for one validator."""

    def __init__(self, validator: ParamValidator) -> None:
        self._validator = validator
        self._checks: dict[Any, Check] = {}
        self._building: set[str] = set()  # names: a shape met again is a new object

    def check(self, shape: Any) -> Check:
        """True if botocore's validator finds no error in a value for ``shape``."""
        check = self._checks.get(shape)
        if check is not None:
            return check
        if shape.name in self._building:
            return self._botocores(shape)
        self._building.add(shape.name)
        try:
            check = self._build(shape)
        finally:
            self._building.discard(shape.name)
        if len(self._checks) < _SHAPES_PER_CLIENT:
            self._checks[shape] = check
        return check

    def _botocores(self, shape: Any) -> Check:
        validate = self._validator.validate
        return lambda value: not validate(value, shape).has_errors()

    def _build(self, shape: Any) -> Check:
        kind = shape.type_name
        scalars = ParamValidator.SCALAR_TYPES
        if is_json_value_header(shape):
            return self._botocores(shape)
        if kind == "structure":
            if shape.is_document_type or shape.is_tagged_union:
                return self._botocores(shape)
            members = {name: self.check(member) for name, member in shape.members.items()}
            return _structure_check(members, list(shape.metadata.get("required", [])))
        if kind == "list":
            member = shape.member
            if member.type_name in scalars and not self._validator._shape_has_constraints(member):
                return _list_of_types(scalars[member.type_name], _minimum(shape))
            return _list_check(self.check(member), _minimum(shape))
        if kind == "map":
            return _map_check(self.check(shape.key), self.check(shape.value))
        if kind == "string":
            return _sized_check(scalars["string"], _minimum(shape))
        if kind in ("integer", "long", "double", "float"):
            return _ranged_check(scalars[kind], _minimum(shape))
        if kind == "boolean":
            return lambda value: isinstance(value, bool)
        if kind == "blob":
            return lambda value: (
                isinstance(value, bytes | bytearray | str) or hasattr(value, "read")
            )
        return self._botocores(shape)  # timestamps, and any type botocore adds


def _minimum(shape: Any) -> float:
    """``botocore.validate.range_check``'s lower bound."""
    if "min" in shape.metadata:
        return shape.metadata["min"]  # type: ignore[no-any-return]
    if shape.serialization.get("hostLabel"):
        return 1
    return float("-inf")


def _structure_check(members: dict[str, Check], required: list[str]) -> Check:
    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        for name in required:
            if name not in value:
                return False
        for name, item in value.items():
            member = members.get(name)
            if member is None or not member(item):
                return False
        return True

    return check


def _list_of_types(types: tuple[type, ...], minimum: float) -> Check:
    def check(value: Any) -> bool:
        if not isinstance(value, list | tuple) or len(value) < minimum:
            return False
        return all(isinstance(item, types) for item in value)

    return check


def _list_check(member: Check, minimum: float) -> Check:
    def check(value: Any) -> bool:
        if not isinstance(value, list | tuple) or len(value) < minimum:
            return False
        return all(member(item) for item in value)

    return check


def _map_check(key: Check, item: Check) -> Check:
    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        return all(key(k) and item(v) for k, v in value.items())

    return check


def _sized_check(types: tuple[type, ...], minimum: float) -> Check:
    return lambda value: isinstance(value, types) and len(value) >= minimum  # type: ignore[arg-type]


def _ranged_check(types: tuple[type, ...], minimum: float) -> Check:
    return lambda value: isinstance(value, types) and value >= minimum  # type: ignore[operator]


class TunedValidationDecorator:
    """botocore's ``ParamValidationDecorator``, with valid parameters let through sooner."""

    def __init__(self, validator: ParamValidator, serializer: Any) -> None:
        self._param_validator = validator
        self._serializer = serializer
        self._checks = ShapeChecks(validator)

    def serialize_to_request(self, parameters: Any, operation_model: Any) -> Any:
        shape = operation_model.input_shape
        if shape is not None and not self._checks.check(shape)(parameters):
            report = self._param_validator.validate(parameters, shape)
            if report.has_errors():
                raise ParamValidationError(report=report.generate_report())
        return self._serializer.serialize_to_request(parameters, operation_model)
