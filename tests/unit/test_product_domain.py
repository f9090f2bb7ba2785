"""Product rules: names, prices, quantities, images, statuses, reviews."""

from __future__ import annotations

import pytest

from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.platform.money import Money
from ec_recommend.services.product import domain


def test_names_are_trimmed_and_must_not_be_empty() -> None:
    assert domain.validate_name("  Tea  ") == "Tea"
    with pytest.raises(InvalidArgument) as err:
        domain.validate_name("   ")
    assert err.value.details["field"] == "name"


def test_overlong_name_is_rejected() -> None:
    with pytest.raises(InvalidArgument):
        domain.validate_name("x" * (domain.MAX_NAME + 1))


def test_sale_price_may_not_exceed_base_price() -> None:
    domain.validate_prices(Money(1000), Money(1000))
    domain.validate_prices(Money(1000), None)
    with pytest.raises(InvalidArgument) as err:
        domain.validate_prices(Money(1000), Money(1001))
    assert err.value.details["field"] == "sale_price"


@pytest.mark.parametrize("quantity", [-1, domain.MAX_STOCK + 1])
def test_quantities_are_bounded(quantity: int) -> None:
    with pytest.raises(InvalidArgument):
        domain.validate_quantity(quantity, "stock_quantity")


def test_zero_quantity_only_where_allowed() -> None:
    assert domain.validate_quantity(0, "stock_quantity") == 0
    with pytest.raises(InvalidArgument):
        domain.validate_quantity(0, "quantity", allow_zero=False)


def test_images_must_be_http_urls() -> None:
    images = domain.validate_images([("https://img.example.com/a.jpg", "front")])
    assert images == (domain.Image("https://img.example.com/a.jpg", "front"),)
    with pytest.raises(InvalidArgument) as err:
        domain.validate_images([("https://ok.example.com/a.jpg", ""), ("javascript:alert(1)", "")])
    assert err.value.details["field"] == "images[1].url"


def test_status_follows_stock_but_archived_sticks() -> None:
    assert domain.status_for_stock(domain.ACTIVE, 0) == domain.OUT_OF_STOCK
    assert domain.status_for_stock(domain.OUT_OF_STOCK, 3) == domain.ACTIVE
    assert domain.status_for_stock(domain.ARCHIVED, 3) == domain.ARCHIVED


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(InvalidArgument):
        domain.validate_status("deleted")


@pytest.mark.parametrize("rating", [0, 6, -1])
def test_rating_is_one_to_five(rating: int) -> None:
    with pytest.raises(InvalidArgument):
        domain.validate_review(rating, "")
