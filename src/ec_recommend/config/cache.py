"""The product read cache."""

from __future__ import annotations

from dataclasses import dataclass

from ec_recommend.config.values import Section


@dataclass(frozen=True)
class CacheConfig:
    """Product read cache: in-process (TTL + LRU) unless ``redis_url`` is set."""

    redis_url: str | None = None
    ttl: float = 5.0
    max_entries: int = 10_000


def cache_config(section: Section) -> CacheConfig:
    """``cache:`` file section and ``EC_CACHE_*`` variables."""
    return CacheConfig(
        redis_url=section.pick("redis_url", "EC_CACHE_REDIS_URL", None) or None,
        ttl=section.seconds("ttl", "EC_CACHE_TTL", 5.0),
        max_entries=section.count("max_entries", "EC_CACHE_MAX_ENTRIES", 10_000),
    )
