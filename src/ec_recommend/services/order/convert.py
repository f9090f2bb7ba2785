"""Orders and payments as protobuf messages (the service's edge)."""

from __future__ import annotations

from ec_recommend._gen.ecommerce import order as pb
from ec_recommend.services.order import domain
from ec_recommend.services.order.ledger import Payment


def order_to_pb(order: domain.Order) -> pb.Order:
    return pb.Order(
        id=order.id,
        order_number=order.order_number,
        user_id=order.user_id,
        items=[
            pb.OrderItem(
                product_id=line.product_id,
                seller_id=line.seller_id,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price.to_pb(),
                line_total=line.line_total.to_pb(),
            )
            for line in order.items
        ],
        total_amount=order.total.to_pb(),
        status=order.status,
        created_at=order.created_at,
        updated_at=order.updated_at,
        payment_id=order.payment_id,
    )


def payment_to_pb(payment: Payment) -> pb.PaymentResponse:
    return pb.PaymentResponse(
        payment_id=payment.id,
        order_id=payment.order_id,
        status=payment.status,
        amount=payment.amount.to_pb(),
        provider_payment_id=payment.provider_payment_id,
        decline_reason=payment.decline_reason,
    )
