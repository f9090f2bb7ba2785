"""Order rules without I/O: the status machine, lines and totals, numbers,
fingerprints, where stock belongs, and who may see or change an order."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest

from ec_recommend.platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from ec_recommend.platform.money import Money
from ec_recommend.platform.rpc.context import Identity
from ec_recommend.services.order import domain

ALLOWED = {
    ("PENDING_PAYMENT", "PAID"),
    ("PENDING_PAYMENT", "CANCELLED"),
    ("PAID", "SHIPPED"),
    ("PAID", "CANCELLED"),
    ("SHIPPED", "DELIVERED"),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(domain.STATUSES, repeat=2)))
def test_status_machine_is_exactly_the_documented_one(current: str, target: str) -> None:
    if (current, target) in ALLOWED:
        domain.check_transition(current, target)
    else:
        with pytest.raises(FailedPrecondition) as caught:
            domain.check_transition(current, target)
        assert caught.value.details["reason"] == "illegal_transition"


def test_a_payment_timeout_cancels_only_unpaid_orders() -> None:
    domain.check_transition("PENDING_PAYMENT", "CANCELLED", domain.PAYMENT_TIMEOUT)
    with pytest.raises(FailedPrecondition):
        domain.check_transition("PAID", "CANCELLED", domain.PAYMENT_TIMEOUT)
    domain.check_transition("PAID", "CANCELLED", "changed my mind")


def test_unknown_status_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        domain.validate_status("shipped")
    assert caught.value.details["field"] == "status"


def _pid() -> str:
    return str(uuid.uuid4())


def test_lines_merge_by_product_and_are_bounded() -> None:
    a, b = _pid(), _pid()
    assert domain.validate_lines([(a, 1), (b, 2), (a.upper(), 3)]) == [(a, 4), (b, 2)]
    cases = [
        ([], "items"),
        ([(_pid(), 1)] * 101, "items"),
        ([("x", 1)], "items[0].product_id"),
        ([(a, 1), (b, 0)], "items[1].quantity"),
        ([(a, -1)], "items[0].quantity"),
        ([(a, 1001)], "items[0].quantity"),
        ([(a, 600), (a, 600)], "items[1].quantity"),
    ]
    for lines, field in cases:
        with pytest.raises(InvalidArgument) as caught:
            domain.validate_lines(lines)
        assert caught.value.details["field"] == field


def _info(pid: str, price: int, *, status: str = "active") -> domain.ProductInfo:
    return domain.ProductInfo(pid, "seller", "Name", Money(price), status)


def test_totals_are_integer_minor_units_at_current_prices() -> None:
    a, b = _pid(), _pid()
    lines, total = domain.price_lines([(a, 3), (b, 2)], {a: _info(a, 333), b: _info(b, 1)})
    assert [line.line_total for line in lines] == [Money(999), Money(2)]
    assert total == Money(1001, "JPY")


def test_pricing_refuses_missing_archived_and_mixed_currency_products() -> None:
    a = _pid()
    with pytest.raises(NotFound):
        domain.price_lines([(a, 1)], {a: None})
    with pytest.raises(FailedPrecondition) as archived:
        domain.price_lines([(a, 1)], {a: _info(a, 100, status="archived")})
    assert archived.value.details == {"product_id": a, "reason": "product_archived"}
    b = _pid()
    usd = domain.ProductInfo(b, "s", "n", Money(100, "USD"), "active")
    with pytest.raises(FailedPrecondition):
        domain.price_lines([(a, 1), (b, 1)], {a: _info(a, 100), b: usd})


def test_order_number_is_dated_and_zero_padded() -> None:
    created = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)
    assert domain.order_number(created, 123) == "EC-20261129-000123"
    assert domain.order_number(created, 1234567) == "EC-20261129-1234567"


def test_fingerprint_identifies_the_body_not_its_line_order() -> None:
    a, b = _pid(), _pid()
    same = domain.request_fingerprint([(a, 1), (b, 2)], False)
    assert same == domain.request_fingerprint([(b, 2), (a, 1)], False)
    assert same != domain.request_fingerprint([(a, 1), (b, 3)], False)
    assert domain.request_fingerprint([], True) != domain.request_fingerprint([], False)


def test_idempotency_key_limits() -> None:
    assert domain.validate_idempotency_key("abc-123") == "abc-123"
    for bad in ("k" * 129, "line\nbreak"):
        with pytest.raises(InvalidArgument):
            domain.validate_idempotency_key(bad)


@pytest.mark.parametrize(
    ("status", "stock", "action"),
    [
        ("PENDING_PAYMENT", "reserved", None),
        ("PAID", "reserved", "committed"),
        ("SHIPPED", "reserved", "committed"),
        ("PAID", "committed", None),
        ("CANCELLED", "reserved", "released"),
        ("CANCELLED", "committed", "restocked"),
        ("CANCELLED", "released", None),
        ("CANCELLED", "restocked", None),
    ],
)
def test_stock_follows_the_status(status: str, stock: str, action: str | None) -> None:
    assert domain.stock_action(status, stock) == action


def _order(user_id: str = "buyer", sellers: tuple[str, ...] = ("s1",)) -> domain.Order:
    now = datetime.now(UTC)
    items = tuple(domain.Line(_pid(), s, "n", 1, Money(100)) for s in sellers)
    return domain.Order("o1", "EC-1", user_id, "PAID", Money(100), items, "committed", "", now, now)


def test_who_sees_an_order() -> None:
    order = _order(sellers=("s1", "s2"))
    assert domain.can_view(None, order)
    assert domain.can_view(Identity("buyer"), order)
    assert domain.can_view(Identity("x", roles=frozenset({"admin"})), order)
    assert domain.can_view(Identity("x", roles=frozenset({"seller"}), seller_id="s2"), order)
    assert not domain.can_view(Identity("x", roles=frozenset({"seller"}), seller_id="s3"), order)
    assert not domain.can_view(Identity("stranger"), order)


def test_owners_cancel_sellers_ship_nobody_sets_paid() -> None:
    order = _order()
    seller = Identity("x", roles=frozenset({"seller"}), seller_id="s1")
    domain.check_status_change(Identity("buyer"), order, "CANCELLED")
    domain.check_status_change(seller, order, "SHIPPED")
    domain.check_status_change(seller, order, "DELIVERED")
    domain.check_status_change(None, order, "SHIPPED")
    for identity, target in [
        (Identity("buyer"), "SHIPPED"),
        (seller, "CANCELLED"),
        (Identity("x", roles=frozenset({"seller"}), seller_id="other"), "SHIPPED"),
    ]:
        with pytest.raises(PermissionDenied):
            domain.check_status_change(identity, order, target)
    for identity in (None, Identity("buyer"), Identity("a", roles=frozenset({"admin"}))):
        with pytest.raises(FailedPrecondition):
            domain.check_status_change(identity, order, "PAID")
