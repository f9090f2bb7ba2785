"""Identifiers: UUIDs rendered as strings, validated at every entrance."""

from __future__ import annotations

import uuid

from ec_recommend.platform.errors import InvalidArgument


def new_id() -> str:
    return str(uuid.uuid4())


def require_id(value: str, field: str) -> str:
    """``value`` as a canonical UUID string, or INVALID_ARGUMENT naming ``field``."""
    if not value:
        raise InvalidArgument(f"{field} is required", field=field)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument(f"{field} is not a valid id", field=field) from None
