from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.services.recommendation import domain


def test_cosine_normalises_by_both_popularities() -> None:
    assert domain.cosine(2, 4, 4) == pytest.approx(0.5)
    assert domain.cosine(0, 4, 4) == 0.0
    assert domain.cosine(3, 0, 4) == 0.0
    # An item in every order co-occurs a lot but scores below a true companion.
    assert domain.cosine(10, 10, 100) < domain.cosine(5, 10, 6)


def test_bought_together_orders_by_cosine_and_drops_the_target() -> None:
    counts = {"a": 10, "companion": 6, "everything": 100}
    ranked = domain.bought_together("a", {"companion": 5, "everything": 10, "a": 3}, counts)
    assert [s.product_id for s in ranked] == ["companion", "everything"]
    assert {s.reason for s in ranked} == {domain.BOUGHT_TOGETHER}


def test_for_you_sums_over_history_and_excludes_it() -> None:
    weights = domain.history_weights({"a": 2, "b": 1}, {"v": 4, "a": 1})
    assert weights == {"a": 1.0, "b": 1.0, "v": domain.VIEW_WEIGHT}
    co = {"a": {"x": 2, "b": 1}, "b": {"x": 1, "y": 3}}
    counts = {"a": 4, "b": 4, "x": 4, "y": 9}
    ranked = domain.for_you(weights, co, counts, exclude={"a", "b"})
    scores = {s.product_id: s.score for s in ranked}
    total = 2 + domain.VIEW_WEIGHT
    assert scores["x"] == pytest.approx((2 / 4 + 1 / 4) / total)
    assert scores["y"] == pytest.approx((3 / 6) / total)
    assert [s.product_id for s in ranked] == ["x", "y"]
    assert all(s.reason == domain.BASED_ON_HISTORY for s in ranked)


def test_forward_decay_halves_per_half_life() -> None:
    t = domain.DECAY_EPOCH + timedelta(days=100)
    later = t + timedelta(days=domain.POPULARITY_HALF_LIFE_DAYS)
    assert domain.decay_factor(later) / domain.decay_factor(t) == pytest.approx(2.0)


def test_text_features_find_japanese_words_inside_compounds() -> None:
    pro = domain.text_features("ワイヤレスイヤホン Pro", "")
    lite = domain.text_features("ワイヤレスイヤホン Lite", "")
    mug = domain.text_features("マグカップ 350ml", "")
    assert domain.text_similarity(pro, lite) > 0.7
    assert domain.text_similarity(pro, mug) == 0.0
    assert domain.text_similarity(pro, pro) == pytest.approx(1.0)
    assert "w:pro" in pro and "b:イヤ" in pro


def test_similar_respects_threshold_and_exclusions() -> None:
    target = {"t": domain.text_features("コーヒー豆 ブラジル", "")}
    candidates = {
        "beans": domain.text_features("コーヒー豆 エチオピア", ""),
        "mill": domain.text_features("コーヒーミル", ""),
        "yoga": domain.text_features("ヨガマット", ""),
        "t": target["t"],
    }
    ranked = domain.similar(target, candidates)
    assert [s.product_id for s in ranked] == ["beans", "mill"]
    assert all(s.reason == domain.SIMILAR for s in ranked)


def test_merge_keeps_first_reason_filters_and_limits() -> None:
    first = [domain.Scored("a", 0.9, "bought_together"), domain.Scored("gone", 0.8, "x")]
    second = [domain.Scored("a", 0.5, "similar"), domain.Scored("b", 0.4, "similar")]
    third = [domain.Scored("self", 9, "popular"), domain.Scored("c", 1, "popular")]
    merged = domain.merge(
        [first, second, third], limit=2, available={"a", "b", "c", "self"}, exclude={"self"}
    )
    assert [(s.product_id, s.reason) for s in merged] == [
        ("a", "bought_together"),
        ("b", "similar"),
    ]


@pytest.mark.parametrize(("limit", "expected"), [(0, 10), (1, 1), (50, 50)])
def test_limits(limit: int, expected: int) -> None:
    assert domain.validate_limit(limit) == expected


@pytest.mark.parametrize("limit", [-1, 51, 10_000])
def test_bad_limits(limit: int) -> None:
    with pytest.raises(InvalidArgument):
        domain.validate_limit(limit)


ids = st.sampled_from("abcdefgh")
scored = st.lists(
    st.builds(domain.Scored, ids, st.floats(0, 10), st.sampled_from(["x", "y"])), max_size=12
)


@given(
    sources=st.lists(scored, max_size=4),
    limit=st.integers(1, 10),
    available=st.sets(ids),
    exclude=st.sets(ids),
)
def test_merge_never_repeats_excluded_or_unavailable_items(
    sources: list[list[domain.Scored]], limit: int, available: set[str], exclude: set[str]
) -> None:
    merged = domain.merge(sources, limit=limit, available=available, exclude=exclude)
    chosen = [s.product_id for s in merged]
    assert len(chosen) == len(set(chosen)) <= limit
    assert set(chosen) <= available - exclude


@given(
    co=st.dictionaries(ids, st.dictionaries(ids, st.integers(1, 20)), max_size=5),
    purchases=st.dictionaries(ids, st.integers(1, 3), max_size=4),
)
def test_for_you_never_recommends_history_and_scores_are_positive(
    co: dict[str, dict[str, int]], purchases: dict[str, int]
) -> None:
    counts = dict.fromkeys("abcdefgh", 20)
    weights = domain.history_weights(purchases, {})
    ranked = domain.for_you(weights, co, counts, exclude=purchases)
    assert not {s.product_id for s in ranked} & set(purchases)
    assert all(0 < s.score <= 1 for s in ranked)
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
