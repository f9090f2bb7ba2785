"""The sandbox payment provider behaves like a processor's test mode, and
remembers what it charged across restarts (its own database)."""

from __future__ import annotations

import asyncio

import pytest

from ec_recommend.platform.errors import InvalidArgument, PaymentDeclined, Unavailable
from ec_recommend.platform.money import Money
from ec_recommend.services.order.payments import NOT_CHARGED, ChargeOutcome
from ec_recommend.services.order.sandbox import open_sandbox

pytestmark = pytest.mark.asyncio


async def test_tokens_succeed_decline_or_fail(storage) -> None:
    async with open_sandbox(storage) as provider:
        charge = await provider.charge(token="tok_visa", amount=Money(1000), idempotency_key="k1")
        assert charge.startswith("ch_")
        with pytest.raises(PaymentDeclined) as declined:
            await provider.charge(
                token="tok_chargeDeclined", amount=Money(1000), idempotency_key="k2"
            )
        assert declined.value.details["decline_code"] == "card_declined"
        with pytest.raises(Unavailable):
            await provider.charge(
                token="tok_processingError", amount=Money(1000), idempotency_key="k3"
            )
        with pytest.raises(InvalidArgument) as unknown:
            await provider.charge(token="tok_nope", amount=Money(1000), idempotency_key="k4")
        assert unknown.value.details["field"] == "payment_method.token"
        with pytest.raises(InvalidArgument) as small:
            await provider.charge(token="tok_visa", amount=Money(49), idempotency_key="k5")
        assert small.value.details["field"] == "amount"


async def test_a_replayed_key_returns_the_first_outcome(storage) -> None:
    async with open_sandbox(storage) as provider:
        first = await provider.charge(token="tok_visa", amount=Money(1000), idempotency_key="k")
        again = await provider.charge(token="tok_visa", amount=Money(1000), idempotency_key="k")
        assert again == first
        with pytest.raises(InvalidArgument):
            await provider.charge(token="tok_visa", amount=Money(999), idempotency_key="k")
        for _ in range(2):
            with pytest.raises(PaymentDeclined):
                await provider.charge(
                    token="tok_chargeDeclined", amount=Money(1000), idempotency_key="d"
                )
        # A replay answers the first outcome whatever the token says now.
        for token in ("tok_processingError", "tok_nope"):
            assert await provider.charge(token=token, amount=Money(1000), idempotency_key="k") == (
                first
            )
            with pytest.raises(PaymentDeclined):
                await provider.charge(token=token, amount=Money(1000), idempotency_key="d")


async def test_concurrent_charges_with_one_key_charge_once(storage) -> None:
    async with open_sandbox(storage) as provider:
        ids = await asyncio.gather(
            *(
                provider.charge(token="tok_visa", amount=Money(700), idempotency_key="same")
                for _ in range(8)
            )
        )
        assert len(set(ids)) == 1


async def test_lookup_tells_the_outcome_of_a_key_after_a_restart(storage) -> None:
    async with open_sandbox(storage) as provider:
        charge = await provider.charge(token="tok_visa", amount=Money(500), idempotency_key="ok")
        with pytest.raises(PaymentDeclined):
            await provider.charge(
                token="tok_chargeDeclinedInsufficientFunds", amount=Money(500), idempotency_key="no"
            )
        with pytest.raises(Unavailable):
            await provider.charge(
                token="tok_processingError", amount=Money(500), idempotency_key="err"
            )
    async with open_sandbox(storage) as reopened:
        assert await reopened.lookup("ok") == ChargeOutcome("succeeded", charge)
        assert await reopened.lookup("no") == ChargeOutcome(
            "declined", decline_code="insufficient_funds"
        )
        assert await reopened.lookup("err") == NOT_CHARGED
        assert await reopened.lookup("never") == NOT_CHARGED


async def test_refunds_are_idempotent_and_need_a_charge(storage) -> None:
    async with open_sandbox(storage) as provider:
        charge = await provider.charge(token="tok_visa", amount=Money(500), idempotency_key="c")
        first = await provider.refund(
            provider_payment_id=charge, amount=Money(500), idempotency_key="r"
        )
        again = await provider.refund(
            provider_payment_id=charge, amount=Money(500), idempotency_key="r"
        )
        assert first == again and first.startswith("re_")
        with pytest.raises(InvalidArgument):
            await provider.refund(
                provider_payment_id="ch_unknown", amount=Money(500), idempotency_key="r2"
            )
