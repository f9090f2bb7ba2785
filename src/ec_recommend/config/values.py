"""Reading one setting: a file section, the environment over it, checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """Configuration that cannot work; the message names the key."""


def positive_int(value: object, key: str, *, allow_zero: bool = False) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise ConfigError(f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {number}")
    return number


def positive_float(value: object, key: str, *, allow_zero: bool = False) -> float:
    try:
        number = float(str(value))
    except ValueError:
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise ConfigError(f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {number}")
    return number


def parse_flag(value: object, key: str) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def truthy(value: object) -> bool:
    """A lenient flag: anything but a true word is false."""
    return str(value).lower() in _TRUE


def optional_path(value: object) -> Path | None:
    return Path(str(value)) if value else None


def check_profile(profile: str) -> str:
    if profile not in ("local", "production"):
        raise ConfigError(f"profile: expected local or production, got {profile!r}")
    return profile


def aws_region_default(env: Mapping[str, str]) -> str:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "ap-northeast-1"


@dataclass(frozen=True)
class Section:
    """One ``name:`` section of the file; an ``EC_*`` variable wins over its key."""

    name: str
    values: Mapping[str, Any]
    env: Mapping[str, str]

    @classmethod
    def of(cls, name: str, values: Mapping[str, Any], env: Mapping[str, str]) -> Section:
        return cls(name, dict(values.get(name) or {}), env)

    def key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def pick(self, key: str, env_key: str, default: Any) -> Any:
        return self.env.get(env_key, self.values.get(key, default))

    def count(self, key: str, env_key: str, default: int, *, allow_zero: bool = False) -> int:
        return positive_int(self.pick(key, env_key, default), self.key(key), allow_zero=allow_zero)

    def seconds(self, key: str, env_key: str, default: float, *, allow_zero: bool = False) -> float:
        return positive_float(
            self.pick(key, env_key, default), self.key(key), allow_zero=allow_zero
        )

    def flag(self, key: str, env_key: str, default: bool) -> bool:
        return parse_flag(self.pick(key, env_key, default), self.key(key))
