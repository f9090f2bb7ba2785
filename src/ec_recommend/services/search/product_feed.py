"""Products changed since a time, paged from ProductService (the backfill source).

Until product events feed the projections, the search index and the
recommendation catalogue poll this: a pass lists every status (archived too,
so projections hide what was archived) newest change first, and stops once it
reaches changes older than the previous pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.platform.clock import aware, utcnow

log = logging.getLogger(__name__)

STATUSES = ("active", "out_of_stock", "archived")
PAGE_SIZE = 100
# Changes committed while a pass runs may carry a slightly earlier timestamp.
OVERLAP = timedelta(seconds=5)


async def changed_products(
    products: pb.ProductServiceStub, since: datetime | None
) -> AsyncIterator[pb.Product]:
    for status in STATUSES:
        page = 1
        while True:
            response = await products.list_products(
                pb.ListProductsRequest(
                    status=status,
                    page=pb_common.PageRequest(
                        page=page, page_size=PAGE_SIZE, sort_by="updated_at", descending=True
                    ),
                )
            )
            older = False
            for product in response.products:
                changed = product.updated_at
                if since is not None and changed is not None and aware(changed) < since:
                    older = True
                    break
                yield product
            total_pages = response.page.total_pages if response.page is not None else 0
            if older or page >= total_pages:
                break
            page += 1


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
    since: datetime | None = None
    while True:
        started = utcnow()
        try:
            count = 0
            async for product in changed_products(connect(), since):
                await apply(product)
                count += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: product backfill failed, retrying in %.0fs: %s", name, retry, exc)
            await asyncio.sleep(retry)
            continue
        if count:
            log.info("%s: %d product(s) synced", name, count)
        since = started - OVERLAP
        if interval <= 0:
            return
        await asyncio.sleep(interval)
