"""One resource for several users in a process, opened by the first and closed after the last."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    """``async with shared.use(open_resource) as resource:`` from each user.

    The first ``use`` enters ``open_resource()``; later ones get the same
    resource; it is exited when the last user leaves, and opened afresh by a
    ``use`` after that.
    """

    def __init__(self) -> None:
        self._users = 0
        self._resource: T | None = None
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    @property
    def users(self) -> int:
        return self._users

    @asynccontextmanager
    async def use(
        self, open_resource: Callable[[], AbstractAsyncContextManager[T]]
    ) -> AsyncIterator[T]:
        async with self._lock:
            if self._stack is None:
                stack = AsyncExitStack()
                self._resource = await stack.enter_async_context(open_resource())
                self._stack = stack
            self._users += 1
            resource = self._resource
        try:
            yield resource  # type: ignore[misc]
        finally:
            async with self._lock:
                self._users -= 1
                if self._users == 0 and self._stack is not None:
                    stack, self._stack, self._resource = self._stack, None, None
                    await stack.aclose()
