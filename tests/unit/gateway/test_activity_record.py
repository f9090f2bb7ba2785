"""Recording a product view is an append to a bounded buffer; the sender builds the events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ec_recommend.config import EventsConfig
from ec_recommend.platform.events.activity import ACTIVITY_TYPE, ActivitySender
from ec_recommend.platform.events.envelope import decode


def test_a_view_is_encoded_by_the_sender_not_on_record() -> None:
    sender = ActivitySender(EventsConfig(), source="gateway")
    sender.product_view(product_id="p-1", user_id="u-1", session_id="s-1")
    sender.search(query="tea" * 200, user_id="u-2")
    occurred = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    sender.record("product_view", product_id="p-2", occurred_at=occurred)

    events = [decode(body) for body in sender.encode_pending()]
    assert sender.encode_pending() == []  # taken
    assert {e.type for e in events} == {ACTIVITY_TYPE}
    assert {e.source for e in events} == {"gateway"}
    view, search, dated = (e.data for e in events)
    assert (view.activity, view.product_id, view.user_id, view.session_id) == (  # type: ignore[attr-defined]
        "product_view",
        "p-1",
        "u-1",
        "s-1",
    )
    assert (search.activity, search.query) == ("search", ("tea" * 200)[:256])  # type: ignore[attr-defined]
    assert dated.occurred_at == occurred  # type: ignore[attr-defined]


def test_a_full_buffer_drops_and_counts() -> None:
    sender = ActivitySender(EventsConfig(), capacity=3)
    for i in range(5):
        sender.product_view(product_id=f"p-{i}")
    assert sender.dropped == 2
    assert [decode(b).data.product_id for b in sender.encode_pending()] == ["p-0", "p-1", "p-2"]  # type: ignore[attr-defined]


def test_an_unknown_activity_is_refused() -> None:
    with pytest.raises(ValueError):
        ActivitySender(EventsConfig()).record("purchase")
