from __future__ import annotations

import pytest

from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.services.search import domain


def test_normalize_folds_width_and_case() -> None:
    assert domain.normalize("ＵＳＢ-Ｃ  ｹｰﾌﾞﾙ") == "usb-c ケーブル"
    assert domain.normalize("  Wireless\tEARBUDS ") == "wireless earbuds"


def test_terms_are_normalized_and_deduplicated() -> None:
    assert domain.parse_terms("イヤホン  PRO pro") == ("イヤホン", "pro")
    assert domain.parse_terms("   ") == ()


@pytest.mark.parametrize("query", ["x" * 201, "a\x00b", " ".join(f"w{i}" for i in range(11))])
def test_bad_queries_are_rejected(query: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        domain.parse_terms(query)
    assert caught.value.details["field"] == "query"


@pytest.mark.parametrize(
    ("low", "high", "field"),
    [(-1, None, "min_price"), (None, -5, "max_price"), (500, 100, "min_price")],
)
def test_bad_price_ranges_are_rejected(low: int | None, high: int | None, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_filters(low, high, "", False)
    assert caught.value.details["field"] == field


def test_tiers_never_overlap_whatever_the_text_rank() -> None:
    assert domain.combine_score(domain.TIER_NAME_SOME_TERM, 0.0) > domain.combine_score(0.0, 1e9)
    assert domain.combine_score(0.0, 2.0) > domain.combine_score(0.0, 1.0)
    assert domain.combine_score(1.0, -3.0) == 1.0


def test_fts5_phrase_escapes_quotes() -> None:
    assert domain.fts5_phrase('a"b') == '"a""b"'
