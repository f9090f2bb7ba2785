"""Products changed since a time, paged from ProductService (the backfill source).

Until product events feed the projections, the search index and the
recommendation catalogue poll this: a pass lists every status (archived too,
so projections hide what was archived) newest change first, and stops once it
reaches changes older than the previous pass.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.platform.backfill import PassWindow, newest_first, run_passes

log = logging.getLogger(__name__)

STATUSES = ("active", "out_of_stock", "archived")
# Changes committed while a pass runs may carry a slightly earlier timestamp.
OVERLAP = timedelta(seconds=5)


def changed_products(
    products: pb.ProductServiceStub, window: PassWindow
) -> AsyncIterator[pb.Product]:
    async def fetch_page(
        status: str, page: pb_common.PageRequest
    ) -> tuple[list[pb.Product], pb_common.PageResponse | None]:
        response = await products.list_products(pb.ListProductsRequest(status=status, page=page))
        return response.products, response.page

    return newest_first(
        fetch_page, STATUSES, sort_by="updated_at", stamp=lambda p: p.updated_at, window=window
    )


async def poll_products(
    name: str,
    connect: Callable[[], pb.ProductServiceStub],
    apply: Callable[[pb.Product], Awaitable[object]],
    *,
    interval: float,
    retry: float = 2.0,
) -> None:
    """Apply every changed product, again every ``interval`` seconds (0 = one pass).

    ``connect`` makes the stub on each pass: in one process ProductService may
    register its endpoint after this starts. Failures (ProductService not up
    yet, a timeout) are logged and retried; this never raises except on
    cancellation.
    """

    async def one_pass(window: PassWindow) -> int:
        count = 0
        async for product in changed_products(connect(), window):
            await apply(product)
            count += 1
        return count

    await run_passes(
        one_pass,
        interval=interval,
        retry=retry,
        overlap=OVERLAP,
        log=log,
        failed=f"{name}: product backfill failed",
        done=f"{name}: %d product(s) synced",
    )
