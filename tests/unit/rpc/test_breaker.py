"""Circuit breaker states on a fake clock."""

from __future__ import annotations

import pytest

from ec_recommend.platform.rpc.breaker import BreakerState, CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def opened(clock: Clock, changes: list[BreakerState] | None = None) -> CircuitBreaker:
    breaker = CircuitBreaker(
        "product",
        3,
        30.0,
        clock=clock,
        on_change=lambda _, state: changes.append(state) if changes is not None else None,
    )
    for _ in range(3):
        breaker.admit()
        breaker.failure()
    return breaker


def test_opens_after_threshold_consecutive_failures_only() -> None:
    breaker = CircuitBreaker("product", 3, 30.0, clock=Clock())
    for _ in range(2):
        breaker.admit()
        breaker.failure()
    breaker.admit()
    breaker.success()  # resets the count
    for _ in range(2):
        breaker.admit()
        breaker.failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.admit()
    breaker.failure()
    assert breaker.state is BreakerState.OPEN


def test_open_fails_fast_with_unavailable_until_the_timeout() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 29.9
    with pytest.raises(CircuitOpen) as caught:
        breaker.admit()
    assert caught.value.code == "UNAVAILABLE"
    assert caught.value.details["reason"] == "circuit_open"


def test_half_open_admits_exactly_one_trial_among_many_callers() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 30.1
    outcomes = []
    for _ in range(50):
        try:
            outcomes.append(breaker.admit())
        except CircuitOpen:
            outcomes.append(None)
    assert outcomes.count(True) == 1
    assert outcomes.count(None) == 49
    assert breaker.state is BreakerState.HALF_OPEN


def test_trial_success_closes_and_failure_reopens() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    breaker = opened(clock, changes)
    clock.now += 31
    assert breaker.admit() is True
    breaker.failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):  # the open period starts again
        breaker.admit()
    clock.now += 31
    assert breaker.admit() is True
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.admit() is False
    assert changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_an_abandoned_trial_lets_the_next_caller_try() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 31
    assert breaker.admit() is True
    breaker.abandon(trial=True)
    assert breaker.admit() is True
