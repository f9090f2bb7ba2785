"""Email templates (Japanese, then English) and their rendering.

Plain text only: product names and display names are user input, and a text
body cannot be made to run anything in a mail client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from string import Template

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import order as pb_order

SIGNATURE = "\n--\nec-recommend\n"


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class EmailTemplate:
    subject: Template
    body: Template

    def render(self, to: str, **values: str) -> Email:
        """Fill every placeholder; a missing value is a bug (KeyError), not a blank."""
        return Email(
            to=to,
            subject=self.subject.substitute(values),
            body=self.body.substitute(values) + SIGNATURE,
        )


WELCOME = EmailTemplate(
    Template("ようこそ ec-recommend へ / Welcome to ec-recommend"),
    Template(
        "$name 様\n\nec-recommend へのご登録ありがとうございます。\n\n"
        "Hello $name,\n\nthank you for signing up to ec-recommend.\n"
    ),
)

ORDER_CONFIRMED = EmailTemplate(
    Template("ご注文ありがとうございます (注文番号 $order_number) / Order confirmed"),
    Template(
        "ご注文のお支払いを確認しました。\n注文番号: $order_number\n\n$lines\n"
        "合計 / Total: $total\n\n"
        "We received the payment for your order $order_number. We will let you "
        "know when it ships.\n"
    ),
)

ORDER_SHIPPED = EmailTemplate(
    Template("ご注文の商品を発送しました (注文番号 $order_number) / Your order has shipped"),
    Template(
        "ご注文 $order_number の商品を発送しました。\n\n$lines\n\n"
        "Your order $order_number is on its way.\n"
    ),
)

ORDER_CANCELLED = EmailTemplate(
    Template("ご注文をキャンセルしました (注文番号 $order_number) / Order cancelled"),
    Template(
        "ご注文 $order_number はキャンセルされました。$refund_ja\n\n$lines\n\n"
        "Your order $order_number was cancelled.$refund_en\n"
    ),
)

SELLER_NEW_ORDER = EmailTemplate(
    Template("新しい注文が入りました (注文番号 $order_number) / New order"),
    Template(
        "お客様のお支払いが完了した注文があります。発送の準備をお願いします。\n"
        "注文番号: $order_number\n\n$lines\n売上 / Sales: $total\n\n"
        "Order $order_number has been paid; please prepare these items for shipping.\n"
    ),
)


def format_money(money: pb_common.Money | None) -> str:
    if money is None:
        return "-"
    if money.currency in ("", "JPY"):
        return f"¥{money.amount:,}"
    return f"{money.amount:,} {money.currency}"


def format_lines(items: Sequence[pb_order.OrderItem]) -> str:
    return "\n".join(
        f"- {item.name or item.product_id} x {item.quantity}  {format_money(item.line_total)}"
        for item in items
    )


def sum_lines(items: Sequence[pb_order.OrderItem]) -> pb_common.Money:
    currency = next((i.line_total.currency for i in items if i.line_total), "JPY")
    return pb_common.Money(
        amount=sum(i.line_total.amount for i in items if i.line_total), currency=currency
    )


def welcome(to: str, display_name: str) -> Email:
    return WELCOME.render(to, name=display_name or to)


def order_confirmed(to: str, order: pb_order.Order) -> Email:
    return ORDER_CONFIRMED.render(
        to,
        order_number=order.order_number or order.id,
        lines=format_lines(order.items),
        total=format_money(order.total_amount),
    )


def order_shipped(to: str, order: pb_order.Order) -> Email:
    return ORDER_SHIPPED.render(
        to, order_number=order.order_number or order.id, lines=format_lines(order.items)
    )


def order_cancelled(to: str, order: pb_order.Order, *, refunded: bool) -> Email:
    return ORDER_CANCELLED.render(
        to,
        order_number=order.order_number or order.id,
        lines=format_lines(order.items),
        refund_ja=" お支払い金額は返金されます。" if refunded else "",
        refund_en=" Your payment will be refunded." if refunded else "",
    )


def seller_new_order(to: str, order: pb_order.Order, items: Sequence[pb_order.OrderItem]) -> Email:
    """The seller sees only its own lines of the order."""
    return SELLER_NEW_ORDER.render(
        to,
        order_number=order.order_number or order.id,
        lines=format_lines(items),
        total=format_money(sum_lines(items)),
    )
