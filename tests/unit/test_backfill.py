"""Backfill passes stop where the source's own clock says the last one did."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from ec_recommend.platform.backfill import PassWindow, run_passes
from ec_recommend.platform.clock import utcnow

pytestmark = pytest.mark.asyncio

OVERLAP = timedelta(seconds=10)


async def passes_until_cancelled(one_pass: Callable[[PassWindow], Awaitable[int]]) -> None:
    """``run_passes`` back to back until ``one_pass`` cancels it."""
    with pytest.raises(asyncio.CancelledError):
        await run_passes(
            one_pass,
            interval=0.001,
            retry=0.001,
            overlap=OVERLAP,
            log=logging.getLogger(__name__),
            failed="failed",
            done="%d applied",
        )


async def test_a_pass_reads_from_the_newest_stamp_the_last_one_saw_less_the_overlap() -> None:
    # The source's clock runs two minutes behind ours: reading from our own
    # clock (less the overlap) would skip every change it stamps next.
    source_now = utcnow() - timedelta(minutes=2)
    reads_from: list[object] = []

    async def one_pass(window: PassWindow) -> int:
        reads_from.append(window.since)
        if len(reads_from) == 1:
            window.saw(source_now - timedelta(seconds=30))
            window.saw(source_now)
            return 2
        if len(reads_from) == 2:
            return 0  # nothing changed: the next pass reads from the same point
        raise asyncio.CancelledError  # enough passes

    await passes_until_cancelled(one_pass)

    assert reads_from == [None, source_now - OVERLAP, source_now - OVERLAP]


async def test_a_failed_pass_is_retried_from_where_it_started() -> None:
    reads_from: list[object] = []

    async def one_pass(window: PassWindow) -> int:
        reads_from.append(window.since)
        if len(reads_from) == 1:
            window.saw(utcnow())  # saw a change, then failed applying it
            raise ConnectionError("source went away")
        if len(reads_from) == 2:
            return 0
        raise asyncio.CancelledError

    await passes_until_cancelled(one_pass)

    assert reads_from == [None, None, None]
