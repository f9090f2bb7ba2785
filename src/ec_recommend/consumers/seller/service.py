"""SellerService over gRPC: a seller's sales ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import seller as pb
from ec_recommend.consumers.access import require_seller_access
from ec_recommend.consumers.seller.consumer import DATABASE
from ec_recommend.consumers.seller.store import MIGRATIONS, SORT_COLUMNS, LedgerEntry, LedgerReader
from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.platform.paging import parse_page
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.registry import ServiceEnv

MAX_SELLER_ID = 64


def entry_to_pb(entry: LedgerEntry) -> pb.LedgerEntry:
    return pb.LedgerEntry(
        id=entry.id,
        order_id=entry.order_id,
        product_id=entry.product_id,
        kind=entry.kind,
        quantity=entry.quantity,
        unit_price=pb_common.Money(amount=entry.unit_price, currency=entry.currency),
        amount=pb_common.Money(amount=entry.amount, currency=entry.currency),
        occurred_at=entry.occurred_at,
    )


class SellerService(pb.SellerServiceBase):
    def __init__(self, reader: LedgerReader) -> None:
        self.reader = reader

    async def get_seller_ledger(self, message: pb.SellerLedgerRequest) -> pb.SellerLedgerResponse:
        seller_id = message.seller_id.strip()
        if not seller_id or len(seller_id) > MAX_SELLER_ID:
            raise InvalidArgument(
                f"seller_id is required (at most {MAX_SELLER_ID} characters)", field="seller_id"
            )
        require_seller_access(seller_id)
        page = parse_page(message.page, sortable=SORT_COLUMNS, default_sort="occurred_at")
        entries, total, balance = await self.reader.page(seller_id, page)
        return pb.SellerLedgerResponse(
            entries=[entry_to_pb(e) for e in entries],
            balance=pb_common.Money(amount=balance, currency="JPY"),
            page=page.response(total),
        )


@asynccontextmanager
async def build(env: ServiceEnv) -> AsyncIterator[Sequence[object]]:
    async with open_database(env.config.storage, DATABASE, MIGRATIONS) as db:
        yield [SellerService(LedgerReader(db))]
