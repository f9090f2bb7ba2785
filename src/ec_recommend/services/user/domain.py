"""User rules with no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlparse

from ec_recommend.platform.errors import InvalidArgument

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164, as Cognito stores it
MAX_EMAIL = 254
MAX_DISPLAY_NAME = 100
MAX_PREFERENCES = 50
MAX_PREFERENCE_KEY = 64
MAX_PREFERENCE_VALUE = 1024


def validate_email(email: str) -> str:
    email = email.strip()
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise InvalidArgument("email is not a valid address", field="email")
    return email.lower()


def validate_phone(phone: str) -> str:
    if phone and not _PHONE.match(phone):
        raise InvalidArgument(
            "phone_number must be in E.164 form, e.g. +819012345678", field="phone_number"
        )
    return phone


def validate_subject(subject: str) -> str:
    if not subject or len(subject) > 128:
        raise InvalidArgument(
            "cognito_user_id is required (at most 128 characters)", field="cognito_user_id"
        )
    return subject


def validate_seller_id(seller_id: str, *, required: bool = True) -> str:
    if (required and not seller_id) or len(seller_id) > 64 or not seller_id.isprintable():
        raise InvalidArgument("seller_id must be 1-64 printable characters", field="seller_id")
    return seller_id


def validate_display_name(name: str) -> str:
    name = name.strip()
    if len(name) > MAX_DISPLAY_NAME:
        raise InvalidArgument(
            f"display_name must be at most {MAX_DISPLAY_NAME} characters", field="display_name"
        )
    return name


def validate_avatar_url(url: str) -> str:
    if not url:
        return url
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > 2048:
        raise InvalidArgument("avatar_url must be an http(s) URL", field="avatar_url")
    return url


def merge_preferences(current: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """Changes win key by key; a key set to "" is removed."""
    merged = dict(current)
    for key, value in changes.items():
        if not key or len(key) > MAX_PREFERENCE_KEY:
            raise InvalidArgument(
                f"preference keys must be 1-{MAX_PREFERENCE_KEY} characters", field="preferences"
            )
        if len(value) > MAX_PREFERENCE_VALUE:
            raise InvalidArgument(
                f"preference values must be at most {MAX_PREFERENCE_VALUE} characters",
                field=f"preferences.{key}",
            )
        if value:
            merged[key] = value
        else:
            merged.pop(key, None)
    if len(merged) > MAX_PREFERENCES:
        raise InvalidArgument(f"at most {MAX_PREFERENCES} preferences", field="preferences")
    return merged
