"""The order events (ARCHITECTURE section 5), recorded in the outbox inside
the unit of work that changes the order."""

from __future__ import annotations

from typing import Any

from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend.platform.events.outbox import event_row, record_event, record_row
from ec_recommend.platform.storage import UnitOfWork
from ec_recommend.services.order import domain
from ec_recommend.services.order.convert import order_to_pb
from ec_recommend.services.order.store import OrderHook

SOURCE = "order-service"


def order_created_row(order: domain.Order) -> dict[str, Any]:
    """The order.created event's outbox row: the store writes it with the order."""
    return event_row(
        "order.created", pb_events.OrderCreated(order=order_to_pb(order)), source=SOURCE
    )


def order_paid_row(order: domain.Order) -> dict[str, Any]:
    """The order.paid event's outbox row, for a writer that inserts it itself."""
    data = pb_events.OrderPaid(
        order=order_to_pb(order), payment_id=order.payment_id, amount=order.total.to_pb()
    )
    return event_row("order.paid", data, source=SOURCE)


async def order_paid(uow: UnitOfWork, order: domain.Order) -> None:
    await record_row(uow, order_paid_row(order))


async def order_shipped(uow: UnitOfWork, order: domain.Order) -> None:
    await record_event(
        uow, "order.shipped", pb_events.OrderShipped(order=order_to_pb(order)), source=SOURCE
    )


async def order_delivered(uow: UnitOfWork, order: domain.Order) -> None:
    await record_event(
        uow, "order.delivered", pb_events.OrderDelivered(order=order_to_pb(order)), source=SOURCE
    )


def order_cancelled(reason: str, *, refunded: bool) -> OrderHook:
    async def record(uow: UnitOfWork, order: domain.Order) -> None:
        data = pb_events.OrderCancelled(order=order_to_pb(order), reason=reason, refunded=refunded)
        await record_event(uow, "order.cancelled", data, source=SOURCE)

    return record


ON_STATUS: dict[str, OrderHook] = {
    domain.SHIPPED: order_shipped,
    domain.DELIVERED: order_delivered,
}
