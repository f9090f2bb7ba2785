"""Request-scoped batching of single-key lookups (seed section 10.2).

Code that needs one product at a time calls ``await loader.load(id)``; all
loads started in the same event-loop tick are sent as one batch call, and a
key asked for twice in one request is fetched once. Create one loader per
incoming request so its cache never outlives the request (prices change).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

from ec_recommend._gen.ecommerce import product as pb_product

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

BatchFn = Callable[[Sequence[K]], Awaitable[Mapping[K, V]]]

MAX_PRODUCTS_PER_CALL = 500  # ProductService.GetProducts' own limit


class DataLoader(Generic[K, V]):
    """Coalesces ``load`` calls of one tick into one ``batch_fn`` call.

    ``batch_fn`` returns the values it found by key; a key it leaves out
    loads as ``None``. An error of the batch call reaches every waiter.
    """

    def __init__(self, batch_fn: BatchFn[K, V], *, max_batch: int = MAX_PRODUCTS_PER_CALL) -> None:
        self._batch_fn = batch_fn
        self._max_batch = max_batch
        self._cache: dict[K, asyncio.Future[V | None]] = {}
        self._queue: list[K] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # how many batch calls were made; for tests and benches

    def load(self, key: K) -> asyncio.Future[V | None]:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._cache[key] = future
        if not self._queue:
            # Run after every coroutine ready in this tick has queued its key.
            loop.call_soon(self._dispatch)
        self._queue.append(key)
        return future

    async def load_many(self, keys: Iterable[K]) -> list[V | None]:
        return list(await asyncio.gather(*(self.load(key) for key in keys)))

    def clear(self, key: K) -> None:
        """Forget ``key`` so the next load fetches it again."""
        self._cache.pop(key, None)

    def _dispatch(self) -> None:
        keys, self._queue = self._queue, []
        for start in range(0, len(keys), self._max_batch):
            chunk = keys[start : start + self._max_batch]
            self.batches += 1
            task = asyncio.ensure_future(self._run(chunk))
            self._tasks.add(task)  # keep a reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _run(self, keys: Sequence[K]) -> None:
        try:
            found = await self._batch_fn(keys)
        except BaseException as exc:
            for key in keys:
                future = self._cache.pop(key, None)
                if future is not None and not future.done():
                    future.set_exception(exc)
                    future.exception()  # the waiters own it; avoid "never retrieved"
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for key in keys:
            future = self._cache[key]
            if not future.done():
                future.set_result(found.get(key))


def product_loader(stub: pb_product.ProductServiceStub) -> DataLoader[str, pb_product.Product]:
    """A loader of products by id over one ``GetProducts`` call per tick."""

    async def fetch(ids: Sequence[str]) -> Mapping[str, pb_product.Product]:
        response = await stub.get_products(pb_product.GetProductsRequest(product_ids=list(ids)))
        return {product.id: product for product in response.products}

    return DataLoader(fetch)
