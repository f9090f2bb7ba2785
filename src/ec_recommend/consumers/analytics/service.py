"""AnalyticsService over gRPC: validated queries on the analytics counters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, timedelta

from ec_recommend._gen.ecommerce import analytics as pb
from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.consumers.access import require_admin_or_internal, require_product_stats_access
from ec_recommend.consumers.analytics.consumer import DATABASE
from ec_recommend.consumers.analytics.store import MIGRATIONS, AnalyticsReader
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.platform.events.envelope import EVENT_TYPES
from ec_recommend.platform.ids import require_id
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.registry import ServiceEnv

DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_PRODUCTS = 500


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{field} must be a date (YYYY-MM-DD)", field=field) from None


def parse_days(request: pb.EventCountsRequest, today: date) -> tuple[date, date]:
    last = _day(request.to_day, "to_day") if request.to_day else today
    first = (
        _day(request.from_day, "from_day")
        if request.from_day
        else last - timedelta(days=DEFAULT_DAYS - 1)
    )
    if first > last:
        raise InvalidArgument("from_day must not be after to_day", field="from_day")
    if (last - first).days >= MAX_DAYS:
        raise InvalidArgument(f"at most {MAX_DAYS} days per query", field="from_day")
    return first, last


class AnalyticsService(pb.AnalyticsServiceBase):
    def __init__(self, reader: AnalyticsReader, clients: ClientFactory) -> None:
        self.reader = reader
        self.clients = clients  # ProductService tells whose products a seller asks about

    async def get_event_counts(self, message: pb.EventCountsRequest) -> pb.EventCountsResponse:
        require_admin_or_internal()
        first, last = parse_days(message, utcnow().date())
        if message.event_type and message.event_type not in EVENT_TYPES:
            raise InvalidArgument("unknown event_type", field="event_type")
        counts = await self.reader.daily_counts(first, last, message.event_type or None)
        return pb.EventCountsResponse(
            counts=[
                pb.EventCount(event_type=c.event_type, day=c.day.isoformat(), count=c.count)
                for c in counts
            ]
        )

    async def get_product_stats(self, message: pb.ProductStatsRequest) -> pb.ProductStatsResponse:
        if not 1 <= len(message.product_ids) <= MAX_PRODUCTS:
            raise InvalidArgument(
                f"product_ids must name 1 to {MAX_PRODUCTS} products", field="product_ids"
            )
        ids = [require_id(pid, "product_ids") for pid in message.product_ids]
        await require_product_stats_access(
            ids, lambda: self.clients.stub(pb_product.ProductServiceStub, "product")
        )
        counters = await self.reader.product_counters(ids)
        return pb.ProductStatsResponse(
            stats=[
                pb.ProductStats(
                    product_id=c.product_id,
                    views=c.views,
                    paid_quantity=c.paid_quantity,
                    paid_orders=c.paid_orders,
                    conversion=c.conversion,
                    revenue=pb_common.Money(amount=c.revenue, currency="JPY"),
                )
                for c in counters
            ]
        )


@asynccontextmanager
async def build(env: ServiceEnv) -> AsyncIterator[Sequence[object]]:
    async with open_database(env.config.storage, DATABASE, MIGRATIONS) as db:
        yield [AnalyticsService(AnalyticsReader(db), env.clients)]
