"""Search rules with no I/O: the indexed snapshot, query parsing, scoring tiers."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from ec_recommend.platform.errors import InvalidArgument

ARCHIVED = "archived"
ACTIVE = "active"
MAX_QUERY_CHARS = 200
MAX_TERMS = 10
MAX_SELLER_ID = 64
MAX_PRICE = 10**15
SORTABLE = ("relevance", "price", "created_at", "name")
# Shortest term the trigram indexes can look up; shorter ones fall back to LIKE.
TRIGRAM = 3

# Score tiers: a whole-name match beats a name containing every term, which
# beats a name containing some term, which beats a description-only match.
# The engine's text rank (bm25 / ts_rank) orders hits within a tier.
TIER_EXACT_NAME = 3.0
TIER_NAME_ALL_TERMS = 2.0
TIER_NAME_SOME_TERM = 1.0


@dataclass(frozen=True)
class Image:
    url: str
    alt_text: str = ""


@dataclass(frozen=True)
class ProductSnapshot:
    """What the index knows about a product (from ProductService or its events)."""

    id: str
    seller_id: str
    name: str
    description: str
    currency: str
    base_price: int
    sale_price: int | None
    stock: int
    status: str
    created_at: datetime
    updated_at: datetime
    images: tuple[Image, ...] = ()

    @property
    def effective_price(self) -> int:
        return self.sale_price if self.sale_price is not None else self.base_price

    @property
    def searchable(self) -> bool:
        return self.status != ARCHIVED


@dataclass(frozen=True)
class SearchHit:
    product: ProductSnapshot
    score: float


@dataclass(frozen=True)
class SearchFilters:
    min_price: int | None = None
    max_price: int | None = None
    seller_id: str = ""
    in_stock: bool = False


def normalize(text: str) -> str:
    """The form both indexed text and queries take: NFKC, case-folded, spaces collapsed.

    NFKC folds full-width latin and half-width katakana, so "ＵＳＢ" finds "USB"
    and "ｲﾔﾎﾝ" finds "イヤホン".
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def parse_terms(query: str) -> tuple[str, ...]:
    """Validated, normalized, de-duplicated whitespace-separated terms."""
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgument(f"q must be at most {MAX_QUERY_CHARS} characters", field="query")
    if any(unicodedata.category(ch) == "Cc" for ch in query):
        raise InvalidArgument("q must not contain control characters", field="query")
    terms = tuple(dict.fromkeys(normalize(query).split()))
    if len(terms) > MAX_TERMS:
        raise InvalidArgument(f"q may have at most {MAX_TERMS} words", field="query")
    return terms


def validate_filters(
    min_price: int | None, max_price: int | None, seller_id: str, in_stock: bool
) -> SearchFilters:
    for name, value in (("min_price", min_price), ("max_price", max_price)):
        if value is not None and not 0 <= value <= MAX_PRICE:
            raise InvalidArgument(f"{name} must be between 0 and {MAX_PRICE}", field=name)
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidArgument("min_price must not exceed max_price", field="min_price")
    if len(seller_id) > MAX_SELLER_ID:
        raise InvalidArgument("seller_id is too long", field="seller_id")
    return SearchFilters(min_price, max_price, seller_id, in_stock)


def combine_score(tier: float, text_rank: float) -> float:
    """Tier plus the engine's rank squashed into [0, 1), so tiers never overlap."""
    rank = max(text_rank, 0.0)
    return tier + rank / (1.0 + rank)


def fts5_phrase(term: str) -> str:
    """A term as an FTS5 string literal (matched as a substring by the trigram tokenizer)."""
    return '"' + term.replace('"', '""') + '"'
