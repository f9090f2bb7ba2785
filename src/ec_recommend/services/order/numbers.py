"""Order numbers on PostgreSQL: the numbering sequence's values, taken a block
at a time.

An order's number is in its order.created event, which is written with the
order; taking the number in the order's own statement would leave the event
without it. So a number is known before the order is written: each process
takes ``BLOCK`` values of the sequence in one round trip and hands them out
in order. Numbers stay unique (the sequence never repeats one) and rise within
a process; a restart skips the rest of its block, and replicas' numbers
interleave. On SQLite the order's transaction takes its number itself.
"""

from __future__ import annotations

import asyncio
from collections import deque

import sqlalchemy as sa

from ec_recommend.platform.storage import Database

BLOCK = 16

# The sequence PostgreSQL made for order_numbers.seq (a serial column); the
# schema is the service's, as for its tables (``schema_translate_map``).
_SEQUENCE = sa.Sequence("order_numbers_seq_seq")
_TAKE = sa.select(_SEQUENCE.next_value().label("seq")).select_from(
    sa.func.generate_series(1, sa.bindparam("block", type_=sa.Integer))
)


class SequenceBlocks:
    def __init__(self, db: Database, block: int = BLOCK) -> None:
        self.db = db
        self.block = block
        self._free: deque[int] = deque()
        self._taking = asyncio.Lock()  # one refill at a time; the others wait for it

    async def next(self) -> int:
        while not self._free:
            async with self._taking:
                if not self._free:
                    rows = await self.db.rows(_TAKE, {"block": self.block})
                    self._free.extend(sorted(int(row.seq) for row in rows))
        return self._free.popleft()
