"""The rules of a payment attempt: how each answer ends it, when it counts as abandoned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ec_recommend.platform.errors import InvalidArgument, PaymentDeclined, Unavailable
from ec_recommend.services.order.attempts import (
    Ending,
    PaymentTiming,
    after_charge_error,
    after_lookup,
    is_abandoned,
    wait_budget,
)
from ec_recommend.services.order.payments import NOT_CHARGED, ChargeOutcome

TIMING = PaymentTiming(call_timeout=10.0, resolve_after=30.0, wait=10.0)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_answers_of_the_provider_end_the_attempt() -> None:
    declined = PaymentDeclined("no", decline_code="insufficient_funds")
    assert after_charge_error(declined) == Ending("declined", "insufficient_funds")
    assert after_charge_error(Unavailable("down")) == Ending("failed", "UNAVAILABLE")
    assert after_charge_error(InvalidArgument("bad")) == Ending("failed", "INVALID_ARGUMENT")


@pytest.mark.parametrize("error", [TimeoutError(), ConnectionResetError(), RuntimeError("bug")])
def test_no_answer_leaves_the_outcome_unknown(error: Exception) -> None:
    assert after_charge_error(error).status == "unknown"


def test_a_lookup_ends_an_abandoned_attempt() -> None:
    assert after_lookup(ChargeOutcome("succeeded", "ch_1")) == Ending(
        "charged", provider_payment_id="ch_1"
    )
    assert after_lookup(ChargeOutcome("declined", decline_code="card_declined")) == Ending(
        "declined", "card_declined"
    )
    assert after_lookup(NOT_CHARGED) == Ending("failed", "not_charged")


def test_an_attempt_is_abandoned_only_past_resolve_after() -> None:
    assert not is_abandoned(NOW - timedelta(seconds=29), NOW, TIMING)
    assert is_abandoned(NOW - timedelta(seconds=31), NOW, TIMING)
    assert not is_abandoned(None, NOW, TIMING)


def test_resolve_after_must_outlast_a_provider_call() -> None:
    with pytest.raises(ValueError):
        PaymentTiming(call_timeout=10.0, resolve_after=10.0)


def test_a_waiting_call_answers_before_its_callers_deadline() -> None:
    assert wait_budget(TIMING, None) == 10.0
    assert wait_budget(TIMING, 60.0) == 10.0
    assert 0.0 < wait_budget(TIMING, 1.0) < 1.0
    assert wait_budget(TIMING, 0.1) == 0.0
