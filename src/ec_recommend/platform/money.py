"""Money in integer minor units, validated."""

from __future__ import annotations

from dataclasses import dataclass

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend.platform.errors import InvalidArgument

SUPPORTED_CURRENCIES = frozenset({"JPY"})
MAX_AMOUNT = 10**12


@dataclass(frozen=True)
class Money:
    amount: int
    currency: str = "JPY"

    def to_pb(self) -> pb_common.Money:
        return pb_common.Money(amount=self.amount, currency=self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)


def money_from_pb(
    value: pb_common.Money | None, field: str, *, required: bool = True
) -> Money | None:
    if value is None:
        if required:
            raise InvalidArgument(f"{field} is required", field=field)
        return None
    currency = value.currency or "JPY"
    if currency not in SUPPORTED_CURRENCIES:
        raise InvalidArgument(
            f"{field}.currency must be one of {', '.join(sorted(SUPPORTED_CURRENCIES))}",
            field=f"{field}.currency",
        )
    if value.amount < 0:
        raise InvalidArgument(f"{field}.amount must not be negative", field=f"{field}.amount")
    if value.amount > MAX_AMOUNT:
        raise InvalidArgument(f"{field}.amount is too large", field=f"{field}.amount")
    return Money(value.amount, currency)
