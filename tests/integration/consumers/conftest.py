"""Helpers for subscriber tests: events, orders, applying handlers, reading SES."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import betterproto2

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend.platform.auth.context import AuthContext
from ec_recommend.platform.errors import Unauthenticated
from ec_recommend.platform.events.consumer import Apply, EffectScope, Handler, as_handler
from ec_recommend.platform.events.envelope import Event, new_event
from ec_recommend.platform.storage import Database


def event(event_type: str, data: betterproto2.Message) -> Event:
    return new_event(event_type, data, source="test")


def order(
    lines: Sequence[tuple[str, str, int, int]], *, user_id: str = "", paid: bool = False
) -> pb_order.Order:
    """An order of (product_id, seller_id, quantity, unit_price) lines."""
    items = [
        pb_order.OrderItem(
            product_id=product_id,
            seller_id=seller_id,
            name=f"商品 {product_id[:4]}",
            quantity=quantity,
            unit_price=pb_common.Money(amount=price, currency="JPY"),
            line_total=pb_common.Money(amount=price * quantity, currency="JPY"),
        )
        for product_id, seller_id, quantity, price in lines
    ]
    order_id = str(uuid.uuid4())
    return pb_order.Order(
        id=order_id,
        order_number=f"ORD-{order_id[:8]}",
        user_id=user_id or str(uuid.uuid4()),
        items=items,
        total_amount=pb_common.Money(
            amount=sum(i.line_total.amount for i in items if i.line_total), currency="JPY"
        ),
        status="PAID" if paid else "PENDING_PAYMENT",
        payment_id="pay_1" if paid else "",
    )


async def apply(db: Database, handler: Handler | Apply, evt: Event) -> None:
    """What the runtime does around a handler, minus the inbox: its local writes
    in one committed unit of work, then (unless they declined it) its effect."""
    handler = as_handler(handler)
    wanted: bool | None = None
    if handler.apply is not None:
        async with db.unit_of_work() as uow:
            wanted = await handler.apply(evt, uow)
            await uow.commit()
    if handler.effect is not None and wanted is not False:
        await handler.effect(evt, EffectScope(db))


async def sent_emails(endpoint_url: str, to: str) -> list[dict[str, Any]]:
    """Messages moto's SES recorded for ``to``, as SES would render them.

    Mail leaves in bulk through the pass-through template, which moto stores
    unrendered: each destination's replacement data is its subject and body.
    """
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{endpoint_url}/moto-api/data.json") as response,
    ):
        data = json.loads(await response.text())
    return [
        json.loads(destination["ReplacementTemplateData"])
        for bulk in data.get("ses", {}).get("BulkTemplateMessage", [])
        for destination in bulk["destinations"]
        if to in destination["Destination"].get("ToAddresses", [])
    ]


class NoTokens:
    """A gateway verifier for tests that only make anonymous calls."""

    async def verify(self, token: str) -> AuthContext:
        raise Unauthenticated("no tokens in this test")


@asynccontextmanager
async def no_tokens() -> AsyncIterator[NoTokens]:
    yield NoTokens()


class TransactionCount:
    """Counts the units of work ``db`` opens from now on (``count``)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        unit_of_work = db.unit_of_work

        def counted() -> Any:
            self.count += 1
            return unit_of_work()

        db.unit_of_work = counted  # type: ignore[method-assign]
