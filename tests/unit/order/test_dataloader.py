"""DataLoader: loads of one event-loop tick become one batch; a request's cache."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from ec_recommend.platform.rpc.dataloader import DataLoader

pytestmark = pytest.mark.asyncio


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    async def __call__(self, keys: Sequence[str]) -> Mapping[str, str]:
        self.calls.append(list(keys))
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("backend down")
        return {k: k.upper() for k in keys if k != "missing"}


async def test_concurrent_loads_in_one_tick_make_one_batch() -> None:
    batch = Recorder()
    loader = DataLoader(batch)
    results = await asyncio.gather(*(loader.load(k) for k in ["a", "b", "c", "a", "missing"]))
    assert results == ["A", "B", "C", "A", None]
    assert batch.calls == [["a", "b", "c", "missing"]]


async def test_the_cache_answers_repeats_and_later_ticks_batch_anew() -> None:
    batch = Recorder()
    loader = DataLoader(batch)
    assert await loader.load_many(["a", "b"]) == ["A", "B"]
    assert await loader.load_many(["b", "c"]) == ["B", "C"]
    assert batch.calls == [["a", "b"], ["c"]]
    loader.clear("a")
    assert await loader.load("a") == "A"
    assert batch.calls[-1] == ["a"]


async def test_batches_are_split_at_the_maximum_size() -> None:
    batch = Recorder()
    loader = DataLoader(batch, max_batch=2)
    await loader.load_many(["a", "b", "c", "d", "e"])
    assert batch.calls == [["a", "b"], ["c", "d"], ["e"]]


async def test_a_failed_batch_reaches_every_waiter_and_is_not_cached() -> None:
    batch = Recorder(fail=True)
    loader = DataLoader(batch)
    results = await asyncio.gather(loader.load("a"), loader.load("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    batch.fail = False
    assert await loader.load("a") == "A"
    assert len(batch.calls) == 2
