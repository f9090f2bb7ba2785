"""Work that must finish even when the caller that started it is cancelled.

A request handler is cancelled when its client's deadline runs out or the
client goes away. Some work must not stop half-way then (an order's commit
and the fate of its stock reservation must agree), so it runs as its own
task: the caller awaits it through ``asyncio.shield`` and, if cancelled, just
stops waiting. ``drain`` lets the owner wait for what is still running
before it closes the resources that work uses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Detached:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """``await work`` that the caller's cancellation does not interrupt."""
        task = asyncio.create_task(work, name=self.name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Read the outcome, so one nobody awaited any more is not reported
        # as "never retrieved"; the work logs what it needs to itself.
        if not task.cancelled():
            task.exception()

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for running work, then cancel the rest."""
        if not self._tasks:
            return
        pending = set(self._tasks)
        _, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            log.warning("%s: cancelled %d unfinished task(s) at shutdown", self.name, len(late))
            await asyncio.wait(late)
