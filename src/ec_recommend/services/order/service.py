"""OrderService over gRPC: who the caller is, what they may see and do, validation."""

from __future__ import annotations

import hashlib

from ec_recommend._gen.ecommerce import order as pb
from ec_recommend.platform.errors import InvalidArgument, NotFound, PermissionDenied
from ec_recommend.platform.ids import require_id
from ec_recommend.platform.paging import parse_page
from ec_recommend.platform.rpc.context import Identity, current_call
from ec_recommend.services.order import domain
from ec_recommend.services.order.checkout import Checkout
from ec_recommend.services.order.convert import order_to_pb, payment_to_pb
from ec_recommend.services.order.fulfilment import Fulfilment
from ec_recommend.services.order.store import SORT_COLUMNS, OrderStore

MAX_REASON = 200
MAX_TOKEN = 255


class OrderService(pb.OrderServiceBase):
    def __init__(self, store: OrderStore, checkout: Checkout, fulfilment: Fulfilment) -> None:
        self.store = store
        self.checkout = checkout
        self.fulfilment = fulfilment

    async def create_order(self, message: pb.CreateOrderRequest) -> pb.Order:
        call = current_call()
        if call.identity is None:  # internal callers name the buyer
            user_id = require_id(message.user_id, "user_id")
        else:
            user_id = call.identity.user_id
            if message.user_id and message.user_id != user_id:
                raise PermissionDenied("orders are placed for the calling user")
        key = domain.validate_idempotency_key(call.idempotency_key or message.idempotency_key)
        order = await self.checkout.create(
            user_id,
            [(line.product_id, line.quantity) for line in message.items],
            from_cart=message.from_cart,
            key=key,
        )
        return order_to_pb(order)

    async def get_order(self, message: pb.GetOrderRequest) -> pb.Order:
        return order_to_pb(await self._visible(message.order_id))

    async def update_order_status(self, message: pb.UpdateOrderStatusRequest) -> pb.Order:
        target = domain.validate_status(message.status)
        if len(message.reason) > MAX_REASON:
            raise InvalidArgument(f"reason must be at most {MAX_REASON} characters", field="reason")
        order = await self._visible(message.order_id)
        domain.check_status_change(current_call().identity, order, target)
        reason = message.reason or "cancelled_by_request"
        return order_to_pb(await self.fulfilment.change_status(order, target, reason))

    async def process_payment(self, message: pb.ProcessPaymentRequest) -> pb.PaymentResponse:
        method = message.payment_method
        if method is None or not method.token:
            raise InvalidArgument("payment_method.token is required", field="payment_method.token")
        if method.type not in ("", "card"):
            raise InvalidArgument("payment_method.type must be card", field="payment_method.type")
        if len(method.token) > MAX_TOKEN or not method.token.isprintable():
            raise InvalidArgument("payment_method.token is malformed", field="payment_method.token")
        order = await self._visible(message.order_id, created_here=True)
        identity = current_call().identity
        if identity is not None and not identity.is_admin and identity.user_id != order.user_id:
            raise PermissionDenied("only the buyer may pay for an order", order_id=order.id)
        key = domain.validate_idempotency_key(
            current_call().idempotency_key or message.idempotency_key
        )
        if key:
            fingerprint = hashlib.sha256(
                f"{method.type or 'card'}:{method.token}".encode()
            ).hexdigest()
            await self.fulfilment.ledger.use_payment_key(order.id, key, fingerprint)
        payment = await self.fulfilment.pay(order, method.token)
        return payment_to_pb(payment)

    async def list_orders(self, message: pb.ListOrdersRequest) -> pb.ListOrdersResponse:
        page = parse_page(message.page, sortable=SORT_COLUMNS, default_sort="created_at")
        status = domain.validate_status(message.status) if message.status else ""
        for value, field in ((message.user_id, "user_id"), (message.seller_id, "seller_id")):
            if len(value) > 64:
                raise InvalidArgument(f"{field} is too long", field=field)
        user_id, seller_id = _list_scope(
            current_call().identity, message.user_id, message.seller_id
        )
        orders, total = await self.store.list_page(
            page, user_id=user_id, seller_id=seller_id, status=status
        )
        return pb.ListOrdersResponse(
            orders=[order_to_pb(o) for o in orders], page=page.response(total)
        )

    async def _visible(self, order_id: str, *, created_here: bool = False) -> domain.Order:
        """The order, if the caller may see it; NOT_FOUND otherwise (no probing).

        ``created_here``: an order this process created lately will do as it
        was created (for a payment, which reads only what never changes of it)."""
        order_id = require_id(order_id, "order_id")
        order = (self.checkout.recent.get(order_id) if created_here else None) or (
            await self.store.get(order_id)
        )
        if not domain.can_view(current_call().identity, order):
            raise NotFound(f"order {order_id} not found", order_id=order_id)
        return order


def _list_scope(identity: Identity | None, user_id: str, seller_id: str) -> tuple[str, str]:
    """The (user_id, seller_id) filters a caller may list with.

    Internal callers and admins filter freely (or list everything); a seller
    may list orders containing its products; everyone may list their own.
    """
    if identity is None or identity.is_admin:
        return user_id, seller_id
    if seller_id:
        if not identity.is_seller or seller_id != identity.seller_id:
            raise PermissionDenied("sellers list only orders of their own products")
        if user_id and user_id != identity.user_id:
            raise PermissionDenied("you may list only your own orders")
        return user_id, seller_id
    if user_id and user_id != identity.user_id:
        raise PermissionDenied("you may list only your own orders")
    return identity.user_id, ""
