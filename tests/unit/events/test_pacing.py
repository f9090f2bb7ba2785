"""When the consumer receives again: the linger after a partial batch (no I/O)."""

from __future__ import annotations

import pytest

from ec_recommend.platform.events.worker import receive_delay


@pytest.mark.parametrize(
    ("received", "requested", "expected"),
    [
        (0, 10, 0.0),  # idle: long-poll again at once, the next message is handled at once
        (10, 10, 0.0),  # full: more may be waiting already
        (3, 3, 0.0),  # full for the slots that were free: the slots pace the next receive
        (1, 10, 0.1),  # partial: messages trickle in, let the next batch fill
        (9, 10, 0.1),
    ],
)
def test_only_a_partial_batch_lingers(received: int, requested: int, expected: float) -> None:
    assert receive_delay(received, requested, linger=0.1) == expected


def test_a_zero_linger_never_waits() -> None:
    assert receive_delay(1, 10, linger=0.0) == 0.0
