"""Recommendation scoring with no I/O.

Item-to-item similarity is the cosine of co-purchase counts,
``co(a, b) / sqrt(n(a) * n(b))`` where ``n`` counts the paid orders holding an
item: an item in nearly every order co-occurs with everything, but its large
``n`` keeps it from dominating. Popularity is paid quantity with exponential
time decay, kept as a forward-decayed sum so that each order adds a constant
and ranking needs no rescan. Catalogue text similarity (shared name and
description features) covers products nobody has bought yet.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ec_recommend.platform.errors import InvalidArgument

BOUGHT_TOGETHER = "bought_together"
BASED_ON_HISTORY = "based_on_history"
POPULAR = "popular"
SIMILAR = "similar"

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
POPULARITY_HALF_LIFE_DAYS = 14.0
DECAY_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
VIEW_WEIGHT = 0.3  # a view says less about taste than a purchase
MIN_TEXT_SIMILARITY = 0.05
NAME_WEIGHT = 2.0
DESCRIPTION_WEIGHT = 1.0
# Catalogue fallback scores sit below any sold item's popularity.
FALLBACK_SCORE = 0.001

_ASCII_WORD = re.compile(r"[a-z][a-z0-9]+|[0-9]+[a-z]+[a-z0-9]*")
_RUN = re.compile(r"\w+")


@dataclass(frozen=True)
class Scored:
    product_id: str
    score: float
    reason: str


def validate_limit(limit: int) -> int:
    if limit == 0:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def cosine(co: int, n_a: int, n_b: int) -> float:
    if co <= 0 or n_a <= 0 or n_b <= 0:
        return 0.0
    return co / math.sqrt(n_a * n_b)


def bought_together(
    target: str, co_counts: Mapping[str, int], order_counts: Mapping[str, int]
) -> list[Scored]:
    """Items co-purchased with ``target``, best cosine first (ties: more co-purchases)."""
    n_target = order_counts.get(target, 0)
    scored = [
        (cosine(co, n_target, order_counts.get(other, 0)), co, other)
        for other, co in co_counts.items()
        if other != target
    ]
    scored.sort(key=lambda item: (-item[0], -item[1], item[2]))
    return [Scored(other, score, BOUGHT_TOGETHER) for score, _, other in scored if score > 0]


def history_weights(purchases: Mapping[str, int], views: Mapping[str, int]) -> dict[str, float]:
    """How much each item in a user's history speaks for their taste."""
    weights = {pid: 1.0 for pid, quantity in purchases.items() if quantity > 0}
    for pid, count in views.items():
        if count > 0 and pid not in weights:
            weights[pid] = VIEW_WEIGHT
    return weights


def for_you(
    weights: Mapping[str, float],
    co_counts: Mapping[str, Mapping[str, int]],
    order_counts: Mapping[str, int],
    exclude: Iterable[str],
) -> list[Scored]:
    """Sum of item-to-item cosine over the history, normalized by the history's weight."""
    excluded = set(exclude) | set(weights)
    total = sum(weights.values()) or 1.0
    scores: dict[str, float] = {}
    for item, weight in weights.items():
        n_item = order_counts.get(item, 0)
        for other, co in co_counts.get(item, {}).items():
            if other in excluded:
                continue
            similarity = cosine(co, n_item, order_counts.get(other, 0))
            scores[other] = scores.get(other, 0.0) + weight * similarity / total
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [Scored(pid, score, BASED_ON_HISTORY) for pid, score in ranked if score > 0]


def decay_factor(at: datetime, half_life_days: float = POPULARITY_HALF_LIFE_DAYS) -> float:
    """Forward decay: ``quantity * decay_factor(paid_at)`` summed per item ranks by
    recency-weighted quantity; divide by ``decay_factor(now)`` to read it at ``now``."""
    days = (at - DECAY_EPOCH).total_seconds() / 86400.0
    return float(2.0 ** (days / half_life_days))


def text_features(name: str, description: str) -> dict[str, float]:
    """Weighted features: ASCII words whole, other scripts as character bigrams.

    Japanese writes words without spaces, so bigrams ("イヤ", "ヤホ", "ホン")
    let "ワイヤレスイヤホン" and "イヤホン" share most of their features.
    """
    features: dict[str, float] = {}
    for text, weight in ((name, NAME_WEIGHT), (description, DESCRIPTION_WEIGHT)):
        normalized = unicodedata.normalize("NFKC", text).casefold()
        for run in _RUN.findall(normalized):
            if run.isascii():
                for word in _ASCII_WORD.findall(run):
                    features["w:" + word] = features.get("w:" + word, 0.0) + weight
                continue
            letters = "".join(ch for ch in run if not ch.isdigit())
            for i in range(len(letters) - 1):
                bigram = "b:" + letters[i : i + 2]
                features[bigram] = features.get(bigram, 0.0) + weight
    return features


def text_similarity(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    dot = sum(weight * large.get(feature, 0.0) for feature, weight in small.items())
    norm = math.sqrt(sum(w * w for w in a.values())) * math.sqrt(sum(w * w for w in b.values()))
    return dot / norm if norm else 0.0


def similar(
    targets: Mapping[str, Mapping[str, float]],
    candidates: Mapping[str, Mapping[str, float]],
    exclude: Iterable[str] = (),
) -> list[Scored]:
    """Candidates most like the targets' text (averaged over the targets)."""
    excluded = set(exclude) | set(targets)
    scores: dict[str, float] = {}
    for pid, features in candidates.items():
        if pid in excluded:
            continue
        score = sum(text_similarity(t, features) for t in targets.values()) / max(len(targets), 1)
        if score >= MIN_TEXT_SIMILARITY:
            scores[pid] = score
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [Scored(pid, score, SIMILAR) for pid, score in ranked]


def merge(
    sources: Sequence[Sequence[Scored]],
    *,
    limit: int,
    available: Iterable[str],
    exclude: Iterable[str] = (),
) -> list[Scored]:
    """Take from each source in turn; an item appears once, with its first reason."""
    allowed = set(available)
    seen = set(exclude)
    result: list[Scored] = []
    for source in sources:
        for item in source:
            if len(result) >= limit:
                return result
            if item.product_id in seen or item.product_id not in allowed:
                continue
            seen.add(item.product_id)
            result.append(item)
    return result
