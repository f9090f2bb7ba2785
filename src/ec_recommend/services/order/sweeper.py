"""The order service's own schedule: an unpaid order is cancelled at its deadline.

An order's payment deadline is ``created_at + payment_timeout``, kept in the
order's own row, so the schedule is durable with no timer per order: the
sweeper sleeps until the earliest deadline of the orders still unpaid (an
indexed query) and cancels what has run out. No wake-up is needed when an
order is placed: every timeout is the same, so an order placed after the
sweeper looked has its deadline at least one timeout later, never before
the time it wakes at anyway. Besides, the full sweep (abandoned payment
attempts, lagging stock, unconfirmed refunds, and every unpaid order past
its deadline, including one a charge in flight kept) runs every
``interval`` as before.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from ec_recommend.platform.clock import utcnow
from ec_recommend.services.order.fulfilment import Fulfilment
from ec_recommend.services.order.store import OrderStore

log = logging.getLogger(__name__)

# Passes at least this far apart: orders whose deadlines fall close together
# are cancelled in one pass, not one pass (and query) each.
MIN_GAP = 0.2  # seconds


class PaymentDeadlines:
    """``await PaymentDeadlines(...).run()``: cancels unpaid orders at their deadline."""

    def __init__(
        self, fulfilment: Fulfilment, store: OrderStore, *, payment_timeout: float, interval: float
    ) -> None:
        self.fulfilment = fulfilment
        self.store = store
        self.timeout = timedelta(seconds=payment_timeout)
        self.interval = interval

    async def next_deadline(self, created_from: datetime | None) -> datetime:
        """The earliest deadline of an unpaid order created at or after ``created_from``,
        or, when there is none, the earliest any order placed from now can have."""
        now = utcnow()
        earliest = await self.store.earliest_unpaid(created_from)
        return (earliest if earliest is not None else now) + self.timeout

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self.interval
        # Orders created before this were looked at by a pass; one left unpaid
        # then (a charge in flight) waits for the full sweep, not a busy loop.
        looked_before: datetime | None = None
        while True:
            until_sweep = next_sweep - loop.time()
            try:
                due = await self.next_deadline(looked_before)
                wait = min((due - utcnow()).total_seconds(), until_sweep)
            except Exception:
                log.exception("cannot read the next payment deadline; sweeping next interval")
                wait = until_sweep
            await asyncio.sleep(max(wait, MIN_GAP))
            cutoff = utcnow() - self.timeout
            try:
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + self.interval
                    cancelled = await self.fulfilment.sweep(self.timeout.total_seconds())
                else:
                    cancelled = await self.fulfilment.cancel_unpaid(cutoff)
                if cancelled:
                    log.info(
                        "cancelled %d order(s) unpaid after %.0fs",
                        cancelled,
                        self.timeout.total_seconds(),
                    )
            except Exception:
                log.exception("order sweep failed; retrying next interval")
            looked_before = cutoff
