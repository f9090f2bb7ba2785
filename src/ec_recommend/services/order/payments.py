"""Payment providers: the interface the order service charges through, and a
sandbox that behaves like a card processor's test mode.

Sandbox tokens (as a processor's test mode documents them): ``tok_visa`` and
``tok_mastercard`` succeed, ``tok_chargeDeclined`` (and
``tok_chargeDeclinedInsufficientFunds``) are declined, ``tok_processingError``
is a provider failure the caller may retry. Any other token is malformed.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from ec_recommend.platform.errors import InvalidArgument, PaymentDeclined, Unavailable
from ec_recommend.platform.money import SUPPORTED_CURRENCIES, Money

SUCCEEDING_TOKENS = frozenset({"tok_visa", "tok_mastercard"})
DECLINING_TOKENS = {
    "tok_chargeDeclined": "card_declined",
    "tok_chargeDeclinedInsufficientFunds": "insufficient_funds",
}
FAILING_TOKENS = frozenset({"tok_processingError"})
MIN_CHARGE = 50  # yen; processors refuse smaller charges
MAX_CHARGE = 99_999_999


class PaymentProvider(Protocol):
    """A card processor. Every call is idempotent per ``idempotency_key``."""

    async def charge(self, *, token: str, amount: Money, idempotency_key: str) -> str:
        """Charge the card; returns the provider's payment id.

        Raises PaymentDeclined (the card was refused), Unavailable (provider
        failure; retry later) or InvalidArgument (bad token, amount, currency).
        """
        ...

    async def refund(self, *, provider_payment_id: str, amount: Money, idempotency_key: str) -> str:
        """Refund (part of) a charge; returns the provider's refund id."""
        ...


class SandboxPaymentProvider:
    """Test-mode processor: outcomes follow the token; replays return the first result."""

    def __init__(self) -> None:
        self._charges: dict[str, tuple[str, Money]] = {}  # idempotency key -> (id, amount)
        self._refunds: dict[str, str] = {}

    async def charge(self, *, token: str, amount: Money, idempotency_key: str) -> str:
        check_amount(amount)
        replay = self._charges.get(idempotency_key)
        if replay is not None:
            if replay[1] != amount:
                raise InvalidArgument(
                    "idempotency key reused with another amount", field="idempotency_key"
                )
            return replay[0]
        if token in DECLINING_TOKENS:
            raise PaymentDeclined("the card was declined", decline_code=DECLINING_TOKENS[token])
        if token in FAILING_TOKENS:
            raise Unavailable("the payment provider failed to process the charge; retry later")
        if token not in SUCCEEDING_TOKENS:
            raise InvalidArgument("unknown payment token", field="payment_method.token")
        payment_id = f"ch_{uuid.uuid4().hex[:24]}"
        self._charges[idempotency_key] = (payment_id, amount)
        return payment_id

    async def refund(self, *, provider_payment_id: str, amount: Money, idempotency_key: str) -> str:
        check_amount(amount)
        if not provider_payment_id.startswith("ch_"):
            raise InvalidArgument("unknown charge", field="provider_payment_id")
        return self._refunds.setdefault(idempotency_key, f"re_{uuid.uuid4().hex[:24]}")


def check_amount(amount: Money) -> None:
    if amount.currency not in SUPPORTED_CURRENCIES:
        raise InvalidArgument(f"currency {amount.currency} is not supported", field="currency")
    if not MIN_CHARGE <= amount.amount <= MAX_CHARGE:
        raise InvalidArgument(
            f"amount must be between {MIN_CHARGE} and {MAX_CHARGE}", field="amount"
        )
