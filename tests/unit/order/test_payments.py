"""The sandbox payment provider behaves like a processor's test mode."""

from __future__ import annotations

import pytest

from ec_recommend.platform.errors import InvalidArgument, PaymentDeclined, Unavailable
from ec_recommend.platform.money import Money
from ec_recommend.services.order.payments import SandboxPaymentProvider

pytestmark = pytest.mark.asyncio


async def test_tokens_succeed_decline_or_fail() -> None:
    provider = SandboxPaymentProvider()
    charge = await provider.charge(token="tok_visa", amount=Money(1000), idempotency_key="k1")
    assert charge.startswith("ch_")
    with pytest.raises(PaymentDeclined) as declined:
        await provider.charge(token="tok_chargeDeclined", amount=Money(1000), idempotency_key="k2")
    assert declined.value.details["decline_code"] == "card_declined"
    with pytest.raises(Unavailable):
        await provider.charge(token="tok_processingError", amount=Money(1000), idempotency_key="k3")
    with pytest.raises(InvalidArgument) as unknown:
        await provider.charge(token="tok_nope", amount=Money(1000), idempotency_key="k4")
    assert unknown.value.details["field"] == "payment_method.token"


async def test_a_replayed_key_returns_the_first_charge() -> None:
    provider = SandboxPaymentProvider()
    first = await provider.charge(token="tok_visa", amount=Money(1000), idempotency_key="k")
    assert await provider.charge(token="tok_visa", amount=Money(1000), idempotency_key="k") == first
    with pytest.raises(InvalidArgument):
        await provider.charge(token="tok_visa", amount=Money(999), idempotency_key="k")


@pytest.mark.parametrize(
    ("amount", "field"),
    [
        (Money(0), "amount"),
        (Money(49), "amount"),
        (Money(10**9), "amount"),
        (Money(100, "USD"), "currency"),
    ],
)
async def test_amount_and_currency_are_checked(amount: Money, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await SandboxPaymentProvider().charge(token="tok_visa", amount=amount, idempotency_key="k")
    assert caught.value.details["field"] == field


async def test_refunds_are_idempotent() -> None:
    provider = SandboxPaymentProvider()
    charge = await provider.charge(token="tok_visa", amount=Money(500), idempotency_key="c")
    first = await provider.refund(
        provider_payment_id=charge, amount=Money(500), idempotency_key="r"
    )
    again = await provider.refund(
        provider_payment_id=charge, amount=Money(500), idempotency_key="r"
    )
    assert first == again and first.startswith("re_")
