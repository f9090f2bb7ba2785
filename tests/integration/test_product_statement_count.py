"""SQL statements per reservation on the product database: ReserveStock,
ConfirmReservation and CommitStock as an order makes them, and a release and
a restock, each counted on every engine of the file.

The counts are deterministic in a quiet run (no lease sweep, no relay): they
catch a re-read after a write, or a read for the response, coming back.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Config
from ec_recommend.platform.clock import utcnow
from tests.integration.order.shop import Shop
from tests.integration.statement_count import statements_on

pytestmark = pytest.mark.asyncio

# BEGINs included (COMMIT and ROLLBACK are the driver's calls, not counted).
# ReserveStock of two lines: BEGIN, per line the stock UPDATE .. RETURNING
# the product (did it sell out? its stock for the answer; the first only
# while the reservation id is new), then one INSERT of both lines. 5 with a
# read of the reservation's state first; 12 when each product was read again
# after its UPDATE, each line inserted apart and the answer read the
# reservation and its products back (BEGIN + SELECT each).
RESERVE_TWO_LINES = 4
CONFIRM = 2  # BEGIN, the lease's conditional UPDATE
# CommitStock: BEGIN, the state's compare-and-set RETURNING the lines, per
# line the stock UPDATE .. RETURNING the product. 9 when the lines were read
# apart and the answer read back as above.
COMMIT_TWO_LINES = 4
# ReleaseStock: as a commit, plus per line the product.updated event's INSERT
# into the outbox; RestockReservation too. 13 with a product read per line
# for the event.
RELEASE_TWO_LINES = 6
RESTOCK_TWO_LINES = RELEASE_TWO_LINES


def _reserve(reservation_id: str, *product_ids: str) -> pb.ReserveStockRequest:
    return pb.ReserveStockRequest(
        reservation_id=reservation_id,
        lines=[pb.StockLine(product_id=p, quantity=1) for p in product_ids],
    )


def _confirm(reservation_id: str) -> pb.ConfirmReservationRequest:
    return pb.ConfirmReservationRequest(
        reservation_id=reservation_id, hold_until=utcnow() + timedelta(minutes=30)
    )


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_reservation_steps_run_a_fixed_number_of_statements(services, config: Config) -> None:
    quiet = dataclasses.replace(
        config, stock=dataclasses.replace(config.stock, lease_sweep_interval=3600)
    )
    async with services("product", config_override=quiet) as hosted:
        shop = Shop(hosted)
        stub = shop.products
        tea, cups = (await shop.product(stock=10)).id, (await shop.product(stock=10)).id
        # Warm-up: first-use statements are not per reservation.
        await stub.reserve_stock(_reserve("warm-up", tea, cups))
        await stub.confirm_reservation(_confirm("warm-up"))
        await stub.commit_stock(pb.ReservationRequest(reservation_id="warm-up"))
        await stub.restock_reservation(pb.ReservationRequest(reservation_id="warm-up"))
        await stub.reserve_stock(_reserve("warm-up-2", tea, cups))
        await stub.release_stock(pb.ReservationRequest(reservation_id="warm-up-2"))

        with statements_on(config.storage, "product") as reserve:
            reserved = await stub.reserve_stock(_reserve("r1", tea, cups))
        with statements_on(config.storage, "product") as confirm:
            await stub.confirm_reservation(_confirm("r1"))
        with statements_on(config.storage, "product") as commit:
            committed = await stub.commit_stock(pb.ReservationRequest(reservation_id="r1"))
        with statements_on(config.storage, "product") as restock:
            await stub.restock_reservation(pb.ReservationRequest(reservation_id="r1"))
        await stub.reserve_stock(_reserve("r2", tea, cups))
        with statements_on(config.storage, "product") as release:
            await stub.release_stock(pb.ReservationRequest(reservation_id="r2"))

        assert reserved.state == "reserved" and reserved.expires_at is not None
        assert sorted((s.available_stock, s.reserved_stock) for s in reserved.stock) == [
            (9, 1),
            (9, 1),
        ]
        assert committed.state == "committed" and committed.expires_at is None
        assert sorted((s.available_stock, s.reserved_stock) for s in committed.stock) == [
            (9, 0),
            (9, 0),
        ]
        counts = {
            "reserve": sum(reserve.values()),
            "confirm": sum(confirm.values()),
            "commit": sum(commit.values()),
            "restock": sum(restock.values()),
            "release": sum(release.values()),
        }
        assert counts == {
            "reserve": RESERVE_TWO_LINES,
            "confirm": CONFIRM,
            "commit": COMMIT_TWO_LINES,
            "restock": RESTOCK_TWO_LINES,
            "release": RELEASE_TWO_LINES,
        }, {
            "reserve": dict(reserve),
            "confirm": dict(confirm),
            "commit": dict(commit),
            "restock": dict(restock),
            "release": dict(release),
        }
