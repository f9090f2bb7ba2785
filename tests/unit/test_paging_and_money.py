"""Paging defaults and bounds; money validation."""

from __future__ import annotations

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.platform.money import Money, money_from_pb
from ec_recommend.platform.paging import parse_page


def test_zero_values_mean_defaults() -> None:
    page = parse_page(None, sortable={"name"}, default_sort="name")
    assert (page.number, page.size, page.sort_by, page.offset) == (1, 20, "name", 0)


def test_page_size_over_100_is_an_error_not_capped() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_page(pb_common.PageRequest(page_size=101), sortable={"name"}, default_sort="name")
    assert err.value.details["field"] == "page_size"


def test_unknown_sort_field_is_an_error() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_page(pb_common.PageRequest(sort_by="secret"), sortable={"name"}, default_sort="name")
    assert err.value.details["field"] == "sort_by"


def test_page_response_counts_pages() -> None:
    page = parse_page(pb_common.PageRequest(page=2, page_size=10), sortable={"n"}, default_sort="n")
    response = page.response(25)
    assert (response.total_pages, response.current_page, page.offset) == (3, 2, 10)


def test_money_defaults_to_yen_and_rejects_negative_or_foreign() -> None:
    assert money_from_pb(pb_common.Money(amount=5), "price") == Money(5, "JPY")
    with pytest.raises(InvalidArgument):
        money_from_pb(pb_common.Money(amount=-1), "price")
    with pytest.raises(InvalidArgument) as err:
        money_from_pb(pb_common.Money(amount=1, currency="XXX"), "price")
    assert err.value.details["field"] == "price.currency"
    assert money_from_pb(None, "sale_price", required=False) is None
