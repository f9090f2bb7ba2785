"""The sandbox's rules: which tokens succeed, decline or fail; which amounts it takes."""

from __future__ import annotations

import pytest

from ec_recommend.platform.errors import InvalidArgument, PaymentDeclined, Unavailable
from ec_recommend.platform.money import Money
from ec_recommend.services.order.payments import check_amount, check_token


def test_tokens_succeed_decline_or_fail() -> None:
    check_token("tok_visa")
    check_token("tok_mastercard")
    with pytest.raises(PaymentDeclined) as declined:
        check_token("tok_chargeDeclinedInsufficientFunds")
    assert declined.value.details["decline_code"] == "insufficient_funds"
    with pytest.raises(Unavailable):
        check_token("tok_processingError")
    with pytest.raises(InvalidArgument) as unknown:
        check_token("tok_nope")
    assert unknown.value.details["field"] == "payment_method.token"


@pytest.mark.parametrize(
    ("amount", "field"),
    [
        (Money(0), "amount"),
        (Money(49), "amount"),
        (Money(10**9), "amount"),
        (Money(100, "USD"), "currency"),
    ],
)
def test_amount_and_currency_are_checked(amount: Money, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_amount(amount)
    assert caught.value.details["field"] == field
