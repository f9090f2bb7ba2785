"""Work that must finish even when the caller that started it is cancelled.

A request handler is cancelled when its client's deadline runs out or the
client goes away. Some work must not stop half-way then (an order's commit
and the fate of its stock reservation must agree), so it runs as its own
task: the caller awaits it through ``asyncio.shield`` and, if cancelled, just
stops waiting. Work nobody needs to wait for (a clean-up that retries)
is ``start``-ed instead. Work may carry a key (one payment attempt per order): while
it runs, ``running(key)`` finds it. ``drain`` lets the owner wait for what
is still running before it closes the resources that work uses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from ec_recommend.platform.errors import ServiceError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Detached:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keyed: dict[str, asyncio.Task[Any]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def running(self, key: str) -> asyncio.Task[Any] | None:
        """The work started under ``key`` while it runs, else None."""
        return self._keyed.get(key)

    async def run(self, work: Coroutine[Any, Any, T], *, key: str | None = None) -> T:
        """``await work`` that the caller's cancellation does not interrupt.

        Raises RuntimeError when work under ``key`` is already running."""
        return await asyncio.shield(self.start(work, key=key))

    def start(self, work: Coroutine[Any, Any, T], *, key: str | None = None) -> asyncio.Task[T]:
        """Run ``work`` in the background: nobody awaits it but ``drain``.

        Raises RuntimeError when work under ``key`` is already running."""
        if key is not None and key in self._keyed:
            work.close()
            raise RuntimeError(f"{self.name}: work for {key} is already running")
        task = asyncio.create_task(work, name=self.name if key is None else f"{self.name}-{key}")
        self._tasks.add(task)
        if key is not None:
            self._keyed[key] = task
        task.add_done_callback(lambda done: self._finished(done, key))
        return task

    def _finished(self, task: asyncio.Task[Any], key: str | None) -> None:
        self._tasks.discard(task)
        if key is not None and self._keyed.get(key) is task:
            del self._keyed[key]
        # Read the outcome, so one nobody awaited any more is not reported as
        # "never retrieved"; expected errors are the caller's to hear, a bug
        # is logged here in case its caller has gone.
        if not task.cancelled():
            error = task.exception()
            if error is not None and not isinstance(error, ServiceError):
                log.warning("%s: detached work failed: %r", self.name, error)

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
