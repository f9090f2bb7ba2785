"""Order rules with no I/O: lines, totals, numbers, the status machine, who may do what."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ec_recommend.platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from ec_recommend.platform.ids import require_id
from ec_recommend.platform.money import MAX_AMOUNT, Money
from ec_recommend.platform.rpc.context import Identity

PENDING_PAYMENT, PAID, SHIPPED, DELIVERED, CANCELLED = (
    "PENDING_PAYMENT",
    "PAID",
    "SHIPPED",
    "DELIVERED",
    "CANCELLED",
)
STATUSES = (PENDING_PAYMENT, PAID, SHIPPED, DELIVERED, CANCELLED)
TRANSITIONS: Mapping[str, frozenset[str]] = {
    PENDING_PAYMENT: frozenset({PAID, CANCELLED}),
    PAID: frozenset({SHIPPED, CANCELLED}),
    SHIPPED: frozenset({DELIVERED}),
    DELIVERED: frozenset(),
    CANCELLED: frozenset(),
}

# Where an order's stock reservation (id = order id) stands at ProductService.
STOCK_RESERVED, STOCK_RELEASED, STOCK_COMMITTED, STOCK_RESTOCKED = (
    "reserved",
    "released",
    "committed",
    "restocked",
)

# The cancel reason of the payment timeout; it cancels only unpaid orders.
PAYMENT_TIMEOUT = "payment_timeout"
# The cancel reason of a paid order whose reserved units were returned meanwhile.
STOCK_NOT_HELD = "stock_not_held"

MAX_LINES = 100
MAX_LINE_QUANTITY = 1000
MAX_IDEMPOTENCY_KEY = 128


@dataclass(frozen=True)
class Line:
    product_id: str
    seller_id: str
    name: str
    quantity: int
    unit_price: Money

    @property
    def line_total(self) -> Money:
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True)
class Order:
    id: str
    order_number: str
    user_id: str
    status: str
    total: Money
    items: tuple[Line, ...]
    stock_state: str
    payment_id: str
    created_at: datetime
    updated_at: datetime

    @property
    def seller_ids(self) -> frozenset[str]:
        return frozenset(line.seller_id for line in self.items)


@dataclass(frozen=True)
class ProductInfo:
    """What an order needs to know of a product at the time of ordering."""

    id: str
    seller_id: str
    name: str
    price: Money
    status: str


def validate_lines(lines: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Requested (product_id, quantity) lines, checked and merged by product."""
    if not lines:
        raise InvalidArgument("an order needs at least one item", field="items")
    if len(lines) > MAX_LINES:
        raise InvalidArgument(f"an order has at most {MAX_LINES} items", field="items")
    merged: dict[str, int] = {}
    for index, (product_id, quantity) in enumerate(lines):
        pid = require_id(product_id, f"items[{index}].product_id")
        if not 0 < quantity <= MAX_LINE_QUANTITY:
            raise InvalidArgument(
                f"quantity must be between 1 and {MAX_LINE_QUANTITY}",
                field=f"items[{index}].quantity",
            )
        merged[pid] = merged.get(pid, 0) + quantity
        if merged[pid] > MAX_LINE_QUANTITY:
            raise InvalidArgument(
                f"at most {MAX_LINE_QUANTITY} of one product per order",
                field=f"items[{index}].quantity",
            )
    return list(merged.items())


def price_lines(
    requested: Sequence[tuple[str, int]], products: Mapping[str, ProductInfo | None]
) -> tuple[tuple[Line, ...], Money]:
    """Order lines at the products' prices, and the total. Stock is not
    checked here: the reservation, which takes it, decides (its products are
    what ``products`` holds, as the reservation left them)."""
    lines: list[Line] = []
    currency = ""
    for product_id, quantity in requested:
        product = products.get(product_id)
        if product is None:
            raise NotFound(f"product {product_id} not found", product_id=product_id)
        if product.status == "archived":
            raise FailedPrecondition(
                f"product {product_id} is no longer sold",
                product_id=product_id,
                reason="product_archived",
            )
        currency = currency or product.price.currency
        if product.price.currency != currency:
            raise FailedPrecondition(
                "all items of an order must share one currency", product_id=product_id
            )
        lines.append(Line(product_id, product.seller_id, product.name, quantity, product.price))
    total = sum(line.line_total.amount for line in lines)
    if total > MAX_AMOUNT:
        raise InvalidArgument("the order total is too large", field="items")
    return tuple(lines), Money(total, currency or "JPY")


def order_number(created_at: datetime, sequence: int) -> str:
    """Human-readable and unique: the date and a global sequence number."""
    return f"EC-{created_at:%Y%m%d}-{sequence:06d}"


def request_fingerprint(lines: Sequence[tuple[str, int]], from_cart: bool) -> str:
    """Identifies a CreateOrder body, so a reused idempotency key can be compared."""
    body = {"from_cart": from_cart, "items": sorted(lines)}
    return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()


def validate_idempotency_key(key: str) -> str:
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise InvalidArgument(
            f"idempotency key must be printable and at most {MAX_IDEMPOTENCY_KEY} characters",
            field="idempotency_key",
        )
    return key


def validate_status(status: str) -> str:
    if status not in STATUSES:
        raise InvalidArgument(f"status must be one of {', '.join(STATUSES)}", field="status")
    return status


def check_transition(current: str, target: str, reason: str = "") -> None:
    # A payment timeout racing a successful payment must not cancel a paid order.
    timed_out_but_paid = reason == PAYMENT_TIMEOUT and current != PENDING_PAYMENT
    if target not in TRANSITIONS[current] or timed_out_but_paid:
        raise FailedPrecondition(
            f"an order that is {current} cannot become {target}",
            reason="illegal_transition",
            status=current,
            target=target,
        )


def stock_action(status: str, stock_state: str) -> str | None:
    """The reservation move that brings stock in line with the order status.

    A cancelled order's reserved units go back to stock whether or not it was
    paid (release); units already committed come back by restocking.
    """
    if status == CANCELLED:
        return {STOCK_RESERVED: STOCK_RELEASED, STOCK_COMMITTED: STOCK_RESTOCKED}.get(stock_state)
    if status in (PAID, SHIPPED, DELIVERED) and stock_state == STOCK_RESERVED:
        return STOCK_COMMITTED
    return None


def can_view(identity: Identity | None, order: Order) -> bool:
    """Owner, admin, internal callers, and sellers of any of its items."""
    if identity is None or identity.is_admin or identity.user_id == order.user_id:
        return True
    return identity.is_seller and identity.seller_id in order.seller_ids


def check_status_change(identity: Identity | None, order: Order, target: str) -> None:
    """Owners cancel; sellers of its items (and admins) ship and deliver."""
    if target == PAID:
        raise FailedPrecondition(
            "an order becomes PAID through its payment", reason="illegal_transition"
        )
    if identity is None or identity.is_admin:
        return
    if target == CANCELLED and identity.user_id == order.user_id:
        return
    if (
        target in (SHIPPED, DELIVERED)
        and identity.is_seller
        and identity.seller_id in order.seller_ids
    ):
        return
    raise PermissionDenied(f"you may not mark this order {target}", order_id=order.id)
