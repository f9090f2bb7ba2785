"""The rules of a payment attempt, with no I/O.

An attempt starts PROCESSING and always ends: SUCCEEDED (the order is PAID),
DECLINED, or FAILED (nothing was charged, or the charge was refunded because
the order was cancelled meanwhile). The caller that started it ends it after
the provider's answer; when nobody does (the caller's process died, the
provider did not answer), a retried payment or the sweep asks the provider
for the outcome once the attempt is older than ``resolve_after``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ec_recommend.platform.errors import PaymentDeclined, ServiceError
from ec_recommend.services.order.payments import ChargeOutcome

EndingStatus = Literal["charged", "declined", "failed", "unknown"]
WAIT_MARGIN = 0.25  # seconds left to the caller to receive our answer


@dataclass(frozen=True)
class PaymentTiming:
    """How long a provider call may take, and when an attempt counts as abandoned.

    ``resolve_after`` exceeds ``call_timeout``, so an attempt whose call is
    still running is never resolved under it.
    """

    call_timeout: float = 10.0
    resolve_after: float = 30.0
    wait: float = 10.0  # longest a second payment call waits for one in flight

    def __post_init__(self) -> None:
        if self.resolve_after <= self.call_timeout:
            raise ValueError("resolve_after must exceed call_timeout")


@dataclass(frozen=True)
class Ending:
    status: EndingStatus
    reason: str = ""
    provider_payment_id: str = ""


def after_charge_error(error: Exception) -> Ending:
    """How a failed charge call ends the attempt.

    The provider raises a ServiceError only when it charged nothing; any
    other error (our call timed out, the connection broke) leaves the
    outcome unknown, to be looked up later.
    """
    if isinstance(error, PaymentDeclined):
        return Ending("declined", error.details.get("decline_code", "declined"))
    if isinstance(error, ServiceError):
        return Ending("failed", error.code)
    return Ending("unknown", type(error).__name__)


def after_lookup(outcome: ChargeOutcome) -> Ending:
    """How the provider's record of a charge ends an abandoned attempt."""
    if outcome.status == "succeeded":
        return Ending("charged", provider_payment_id=outcome.provider_payment_id)
    if outcome.status == "declined":
        return Ending("declined", outcome.decline_code or "declined")
    return Ending("failed", "not_charged")


def is_abandoned(started_at: datetime | None, now: datetime, timing: PaymentTiming) -> bool:
    """True when an attempt has been PROCESSING for longer than any live call could."""
    return started_at is not None and (now - started_at).total_seconds() > timing.resolve_after


def wait_budget(timing: PaymentTiming, caller_remaining: float | None) -> float:
    """How long a payment call may wait for an attempt in flight: never past
    the caller's own deadline, so it answers (ABORTED, retry) rather than timing out."""
    if caller_remaining is None:
        return timing.wait
    return max(0.0, min(timing.wait, caller_remaining - WAIT_MARGIN))
