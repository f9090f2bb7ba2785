"""``events replay --since``: an ISO time or a duration back from now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ec_recommend.platform.events.replay import BadSince, parse_since

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_a_duration_counts_back_from_now(text: str, back: timedelta) -> None:
    assert parse_since(text, NOW) == NOW - back


def test_an_iso_time_without_offset_is_utc() -> None:
    assert parse_since("2026-11-30T10:00:00", NOW) == datetime(2026, 11, 30, 10, tzinfo=UTC)


def test_an_iso_time_with_an_offset_is_converted_to_utc() -> None:
    parsed = parse_since("2026-11-30T19:00:00+09:00", NOW)
    assert parsed == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "15", "-5m", "2026-13-01", ""])
def test_anything_else_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(BadSince, match="ISO 8601"):
        parse_since(text, NOW)


def test_a_time_in_the_future_is_refused() -> None:
    with pytest.raises(BadSince, match="future"):
        parse_since("2027-01-01T00:00:00Z", NOW)
