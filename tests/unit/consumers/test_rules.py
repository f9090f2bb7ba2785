"""Pure rules of the subscribers: ledger lines, paid cancellations, query ranges."""

from __future__ import annotations

from datetime import date

import pytest

from ec_recommend._gen.ecommerce import analytics as pb_analytics
from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend.consumers.analytics.service import parse_days
from ec_recommend.consumers.analytics.store import ProductCounters
from ec_recommend.consumers.catalogue import product_id_of
from ec_recommend.consumers.seller.consumer import ledger_lines, was_paid
from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.platform.events.envelope import new_event

TODAY = date(2026, 11, 29)


def test_ledger_lines_number_every_order_line() -> None:
    order = pb_order.Order(
        id="o",
        items=[
            pb_order.OrderItem(
                product_id="p", seller_id="s", quantity=2, unit_price=pb_common.Money(amount=10)
            ),
            pb_order.OrderItem(product_id="p", seller_id="t", quantity=1),
        ],
    )
    lines = ledger_lines(order)
    assert [(line.line_no, line.seller_id, line.unit_price) for line in lines] == [
        (1, "s", 10),
        (2, "t", 0),
    ]
    assert {line.currency for line in lines} == {"JPY"}


@pytest.mark.parametrize(
    ("cancelled", "paid"),
    [
        (pb_events.OrderCancelled(order=pb_order.Order(id="o")), False),
        (pb_events.OrderCancelled(order=pb_order.Order(id="o"), refunded=True), True),
        (pb_events.OrderCancelled(order=pb_order.Order(id="o", payment_id="pay")), True),
    ],
)
def test_only_a_paid_order_is_reversed(cancelled: pb_events.OrderCancelled, paid: bool) -> None:
    assert was_paid(cancelled) is paid


def test_conversion_is_paid_units_per_view() -> None:
    assert ProductCounters("p", views=4, paid_quantity=1).conversion == 0.25
    assert ProductCounters("p", views=0, paid_quantity=3).conversion == 0.0


def test_day_range_defaults_to_thirty_days_up_to_today() -> None:
    assert parse_days(pb_analytics.EventCountsRequest(), TODAY) == (date(2026, 10, 31), TODAY)
    request = pb_analytics.EventCountsRequest(from_day="2026-11-01", to_day="2026-11-02")
    assert parse_days(request, TODAY) == (date(2026, 11, 1), date(2026, 11, 2))


@pytest.mark.parametrize(
    "request_",
    [
        pb_analytics.EventCountsRequest(from_day="2026-13-01"),
        pb_analytics.EventCountsRequest(to_day="tomorrow"),
        pb_analytics.EventCountsRequest(from_day="2026-11-03", to_day="2026-11-02"),
        pb_analytics.EventCountsRequest(from_day="2025-01-01", to_day="2026-11-02"),
    ],
)
def test_bad_day_ranges_are_invalid(request_: pb_analytics.EventCountsRequest) -> None:
    with pytest.raises(InvalidArgument):
        parse_days(request_, TODAY)


def test_product_events_name_their_product() -> None:
    updated = new_event("product.updated", pb_events.ProductUpdated(product_id="p1"), source="t")
    assert product_id_of(updated) == "p1"
    paid = new_event("order.paid", pb_events.OrderPaid(order=pb_order.Order(id="o")), source="t")
    with pytest.raises(TypeError):
        product_id_of(paid)
