"""The payment timeout as a delayed SQS message on the order-processing-queue.

When an order is placed, a copy of its ``order.created`` event (a new event
id, the deadline in its metadata) is sent back to this queue with a delay.
SQS delays at most 15 minutes, so a copy that arrives before the deadline is
sent again for the rest. At the deadline an order still awaiting payment is
cancelled through OrderService (which releases its stock). The order
service's periodic sweep stays as the safety net for lost messages.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend.config import EventsConfig
from ec_recommend.platform.clock import aware, utcnow
from ec_recommend.platform.errors import FailedPrecondition
from ec_recommend.platform.events.aws import queue_url
from ec_recommend.platform.events.envelope import Event, encode
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.storage import UnitOfWork

log = logging.getLogger(__name__)

DEADLINE = "payment_deadline"  # metadata key of a delayed copy
MAX_DELAY = 900  # seconds; the SQS limit
PENDING_PAYMENT = "PENDING_PAYMENT"
REASON = "payment_timeout"


def delay_until(deadline: datetime, now: datetime) -> int:
    """Whole seconds to wait for ``deadline``, within what SQS can delay."""
    return max(0, min(MAX_DELAY, math.ceil((deadline - now).total_seconds())))


def deadline_of(event: Event) -> datetime | None:
    """The deadline a delayed copy carries; None for the original event."""
    text = event.metadata.get(DEADLINE)
    if not text:
        return None
    return aware(datetime.fromisoformat(text))  # malformed: fail, retry, dead-letter


class PaymentTimeouts:
    def __init__(
        self,
        sqs: Any,
        events: EventsConfig,
        queue: str,
        orders: pb_order.OrderServiceStub,
        timeout: float,
    ) -> None:
        self.sqs = sqs
        self.events = events
        self.queue = queue
        self.orders = orders
        self.timeout = timedelta(seconds=timeout)
        self._queue_url: str | None = None

    async def on_order_created(self, event: Event, uow: UnitOfWork) -> None:
        created = event.data
        assert isinstance(created, pb.OrderCreated) and created.order is not None
        order = created.order
        deadline = deadline_of(event)
        if deadline is None:
            if order.status == PENDING_PAYMENT:
                placed = aware(order.created_at) if order.created_at else event.timestamp
                await self._schedule(event, placed + self.timeout)
            return
        if utcnow() < deadline:
            await self._schedule(event, deadline)  # longer than one SQS delay
            return
        await self._expire(order.id)

    async def _schedule(self, event: Event, deadline: datetime) -> None:
        copy = replace(
            event,
            id=new_id(),
            timestamp=utcnow(),
            metadata={**event.metadata, DEADLINE: deadline.isoformat()},
        )
        if self._queue_url is None:
            self._queue_url = await queue_url(self.sqs, self.events, self.queue)
        await self.sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=encode(copy),
            DelaySeconds=delay_until(deadline, utcnow()),
            MessageAttributes={"type": {"DataType": "String", "StringValue": event.type}},
        )

    async def _expire(self, order_id: str) -> None:
        order = await self.orders.get_order(pb_order.GetOrderRequest(order_id=order_id))
        if order.status != PENDING_PAYMENT:
            return
        try:
            await self.orders.update_order_status(
                pb_order.UpdateOrderStatusRequest(
                    order_id=order_id, status="CANCELLED", reason=REASON
                )
            )
        except FailedPrecondition:
            return  # paid or cancelled meanwhile (a concurrent change retries)
        log.info("order %s cancelled: unpaid at its payment deadline", order_id)
