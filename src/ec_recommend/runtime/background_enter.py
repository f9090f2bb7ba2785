"""An async context manager entered in the background, its exit placed later.

``up`` starts its gateway (clients, signing keys, the push fan-out: mostly
waits on the broker) while the consumers start and the demo data loads, yet
the gateway must still stop first. So it is entered in a task now and put on
the exit stack only when it is handed over, after the steps it stops before.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Generic, TypeVar

T = TypeVar("T")


class BackgroundEnter(Generic[T]):
    """``entering = BackgroundEnter(cm)``; later ``value = await entering.handover(stack)``.

    Register ``entering.abandon`` on the stack at once: a start that fails
    before the handover then stops the entering, or exits what it entered.
    """

    def __init__(self, manager: AbstractAsyncContextManager[T], name: str) -> None:
        self._manager = manager
        self._task: asyncio.Task[T] = asyncio.create_task(self._enter(), name=name)
        self._handed_over = False

    async def _enter(self) -> T:
        return await self._manager.__aenter__()

    async def handover(self, stack: AsyncExitStack) -> T:
        """Once entered, the value; from then on ``stack`` exits the manager."""
        value = await self._task
        stack.push_async_exit(self._manager)
        self._handed_over = True
        return value

    async def abandon(self) -> None:
        if self._handed_over:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if not self._task.cancelled() and self._task.exception() is None:
            await self._manager.__aexit__(None, None, None)
