"""Payment providers: the interface the order service charges through, and the
rules of the sandbox (``sandbox.py``) that behaves like a processor's test mode.

Sandbox tokens (as a processor's test mode documents them): ``tok_visa`` and
``tok_mastercard`` succeed, ``tok_chargeDeclined`` (and
``tok_chargeDeclinedInsufficientFunds``) are declined, ``tok_processingError``
is a provider failure the caller may retry. Any other token is malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

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

ChargeStatus = Literal["succeeded", "declined", "not_found"]


@dataclass(frozen=True)
class ChargeOutcome:
    """What the provider knows of a charge asked for with one idempotency key."""

    status: ChargeStatus
    provider_payment_id: str = ""
    decline_code: str = ""


NOT_CHARGED = ChargeOutcome("not_found")


class PaymentProvider(Protocol):
    """A card processor. Every call is idempotent per ``idempotency_key``."""

    async def charge(self, *, token: str, amount: Money, idempotency_key: str) -> str:
        """Charge the card; returns the provider's payment id.

        Raises PaymentDeclined (the card was refused), Unavailable (provider
        failure; nothing was charged) or InvalidArgument (bad token, amount,
        currency).
        """
        ...

    async def refund(self, *, provider_payment_id: str, amount: Money, idempotency_key: str) -> str:
        """Refund (part of) a charge; returns the provider's refund id."""
        ...

    async def lookup(self, idempotency_key: str) -> ChargeOutcome:
        """The outcome of the charge asked for with ``idempotency_key``
        (``not_found``: it was never charged)."""
        ...


def check_token(token: str) -> None:
    """Raise what the sandbox answers for a token that does not succeed."""
    if token in DECLINING_TOKENS:
        raise PaymentDeclined("the card was declined", decline_code=DECLINING_TOKENS[token])
    if token in FAILING_TOKENS:
        raise Unavailable("the payment provider failed to process the charge; retry later")
    if token not in SUCCEEDING_TOKENS:
        raise InvalidArgument("unknown payment token", field="payment_method.token")


def check_amount(amount: Money) -> None:
    if amount.currency not in SUPPORTED_CURRENCIES:
        raise InvalidArgument(f"currency {amount.currency} is not supported", field="currency")
    if not MIN_CHARGE <= amount.amount <= MAX_CHARGE:
        raise InvalidArgument(
            f"amount must be between {MIN_CHARGE} and {MAX_CHARGE}", field="amount"
        )
