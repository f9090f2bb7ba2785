"""Email rendering: every template fills its placeholders from the order."""

from __future__ import annotations

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend.consumers import templates


def _order() -> pb_order.Order:
    def item(pid: str, seller: str, qty: int, price: int) -> pb_order.OrderItem:
        return pb_order.OrderItem(
            product_id=pid,
            seller_id=seller,
            name=f"名前{pid}",
            quantity=qty,
            unit_price=pb_common.Money(amount=price, currency="JPY"),
            line_total=pb_common.Money(amount=price * qty, currency="JPY"),
        )

    return pb_order.Order(
        id="o1",
        order_number="ORD-0001",
        user_id="u1",
        items=[item("p1", "s1", 2, 1500), item("p2", "s2", 1, 99)],
        total_amount=pb_common.Money(amount=3099, currency="JPY"),
    )


def test_order_confirmation_lists_lines_and_total() -> None:
    email = templates.order_confirmed("a@example.com", _order())
    assert email.to == "a@example.com"
    assert "ORD-0001" in email.subject and "Order confirmed" in email.subject
    assert "名前p1 x 2  ¥3,000" in email.body
    assert "¥3,099" in email.body
    assert "$" not in email.body  # no placeholder left unfilled


def test_cancellation_mentions_refund_only_when_refunded() -> None:
    refunded = templates.order_cancelled("a@example.com", _order(), refunded=True)
    unpaid = templates.order_cancelled("a@example.com", _order(), refunded=False)
    assert "refunded" in refunded.body and "返金" in refunded.body
    assert "refunded" not in unpaid.body and "返金" not in unpaid.body


def test_seller_email_totals_only_its_own_lines() -> None:
    order = _order()
    email = templates.seller_new_order("s@example.com", order, [order.items[1]])
    assert "名前p2" in email.body and "名前p1" not in email.body
    assert "Sales: ¥99" in email.body


def test_welcome_falls_back_to_the_address_without_a_name() -> None:
    assert "Hello a@example.com" in templates.welcome("a@example.com", "").body
    assert "花子 様" in templates.welcome("a@example.com", "花子").body


def test_user_text_is_not_a_template() -> None:
    order = _order()
    order.items[0].name = "$total ${order_number}"
    assert "$total ${order_number}" in templates.order_shipped("a@example.com", order).body


def test_a_missing_placeholder_is_a_bug_not_a_blank() -> None:
    with pytest.raises(KeyError):
        templates.ORDER_SHIPPED.render("a@example.com", order_number="1")


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (pb_common.Money(amount=1234567, currency="JPY"), "¥1,234,567"),
        (pb_common.Money(amount=5, currency=""), "¥5"),
        (pb_common.Money(amount=5, currency="USD"), "5 USD"),
        (None, "-"),
    ],
)
def test_format_money(money: pb_common.Money | None, text: str) -> None:
    assert templates.format_money(money) == text
