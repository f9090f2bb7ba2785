"""User rules: emails, phone numbers, profiles and preference merging."""

from __future__ import annotations

import pytest

from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.services.user import domain


def test_email_is_normalised() -> None:
    assert domain.validate_email(" Hanako@Example.COM ") == "hanako@example.com"


@pytest.mark.parametrize(
    "email", ["", "no-at-sign", "a@b", "a b@example.com", "x" * 250 + "@e.com"]
)
def test_bad_emails_are_rejected(email: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_email(email)
    assert err.value.details["field"] == "email"


def test_phone_numbers_are_e164_or_empty() -> None:
    assert domain.validate_phone("") == ""
    assert domain.validate_phone("+819012345678") == "+819012345678"
    with pytest.raises(InvalidArgument):
        domain.validate_phone("090-1234-5678")


def test_preferences_merge_key_by_key_and_empty_removes() -> None:
    merged = domain.merge_preferences({"lang": "ja", "theme": "dark"}, {"theme": "", "size": "M"})
    assert merged == {"lang": "ja", "size": "M"}


def test_preferences_are_bounded() -> None:
    too_many = {f"k{i}": "v" for i in range(domain.MAX_PREFERENCES + 1)}
    with pytest.raises(InvalidArgument):
        domain.merge_preferences({}, too_many)
    with pytest.raises(InvalidArgument):
        domain.merge_preferences({}, {"k": "v" * (domain.MAX_PREFERENCE_VALUE + 1)})


def test_avatar_must_be_http_url() -> None:
    assert domain.validate_avatar_url("") == ""
    with pytest.raises(InvalidArgument):
        domain.validate_avatar_url("file:///etc/passwd")
