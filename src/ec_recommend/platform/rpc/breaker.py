"""Circuit breaker per target service (seed section 6.2).

closed → open after ``threshold`` consecutive failures → half-open once
``timeout`` has passed → exactly one trial call → closed on success, open
again on failure. While open (and while the trial runs) calls fail at once
with UNAVAILABLE, so callers never wait on a service that is down.

One event loop runs all callers, so state changes between awaits are atomic;
``admit`` never awaits, which is what makes "exactly one trial" hold under
any number of concurrent callers.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable

from ec_recommend.platform import errors


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


StateListener = Callable[[str, BreakerState], None]


class CircuitOpen(errors.Unavailable):
    """Raised instead of calling a service whose circuit is open."""


class CircuitBreaker:
    def __init__(
        self,
        service: str,
        threshold: int,
        reset_timeout: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: StateListener | None = None,
    ) -> None:
        self.service = service
        self.threshold = threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def reopens_at(self) -> float:
        """When an open circuit lets its trial call through (clock time)."""
        return self._opened_at + self.reset_timeout

    def admit(self) -> bool:
        """Whether a call may go out now; returns True for the half-open trial.

        Raises ``CircuitOpen`` when it may not. A caller that is admitted must
        report exactly one of ``success``, ``failure`` or ``abandon``.
        """
        if self._state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.reset_timeout:
                raise self._open_error()
            self._set(BreakerState.HALF_OPEN)
        if self._state is BreakerState.HALF_OPEN:
            if self._trial_running:
                raise self._open_error()
            self._trial_running = True
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._trial_running = False
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def failure(self) -> None:
        self._trial_running = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
            self._opened_at = self._clock()
            if self._state is not BreakerState.OPEN:
                self._set(BreakerState.OPEN)

    def abandon(self, *, trial: bool) -> None:
        """The admitted call ended without a verdict (cancelled): let another try."""
        if trial:
            self._trial_running = False

    def _open_error(self) -> CircuitOpen:
        # when a trial may go through: the edge turns it into Retry-After
        wait = max(1, math.ceil(self.reopens_at - self._clock()))
        return CircuitOpen(
            f"circuit to {self.service} is open",
            service=self.service,
            reason="circuit_open",
            retry_after=str(wait),
        )

    def _set(self, state: BreakerState) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(self.service, state)
