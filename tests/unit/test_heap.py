"""A started process settles its heap: startup objects frozen, fewer young collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ec_recommend.platform import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_settle_freezes_what_startup_built_and_collects_the_young_less_often() -> None:
    built_at_startup = {"routes": []}
    gc.unfreeze()
    _, middle, old = gc.get_threshold()

    heap.settle()

    # frozen objects are out of every generation the collector walks
    assert not any(tracked is built_at_startup for tracked in gc.get_objects())
    assert gc.get_threshold() == (heap.YOUNG_COLLECTION_THRESHOLD, middle, old)
