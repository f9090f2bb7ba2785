"""with_retry: the one retry helper (seed 9.2 WithRetry)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry


class Flaky(Exception):
    pass


class Fatal(Exception):
    pass


class Script:
    """An operation that fails with the given errors in turn, then succeeds."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.waits.append(delay)


NO_JITTER = Backoff(initial_delay=0.1, max_delay=0.5, multiplier=2.0, jitter=0.0)


def retry_flaky(exc: Exception) -> bool:
    return isinstance(exc, Flaky)


def test_backoff_grows_by_the_multiplier_up_to_max_delay() -> None:
    assert list(itertools.islice(NO_JITTER.delays(), 5)) == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_jitter_spreads_each_delay_within_its_band(draw: float) -> None:
    backoff = Backoff(initial_delay=0.1, multiplier=2.0, max_delay=10.0, jitter=0.2)
    first, second = itertools.islice(backoff.delays(rng=lambda: draw), 2)
    assert 0.08 <= first <= 0.12
    assert 0.16 <= second <= 0.24


def test_jitter_never_exceeds_max_delay() -> None:
    backoff = Backoff(initial_delay=1.0, multiplier=2.0, max_delay=1.0, jitter=0.5)
    assert max(itertools.islice(backoff.delays(rng=lambda: 0.999), 10)) <= 1.0


@pytest.mark.asyncio
async def test_retries_until_success_with_growing_waits() -> None:
    operation, sleeps = Script(Flaky(), Flaky()), Sleeps()
    result = await with_retry(
        operation, is_retryable=retry_flaky, backoff=NO_JITTER, max_attempts=5, sleep=sleeps
    )
    assert result == "done"
    assert operation.calls == 3
    assert sleeps.waits == pytest.approx([0.1, 0.2])


@pytest.mark.asyncio
async def test_an_error_that_is_not_retryable_is_raised_at_once() -> None:
    operation = Script(Fatal("no"))
    with pytest.raises(Fatal):
        await with_retry(operation, is_retryable=retry_flaky, sleep=Sleeps())
    assert operation.calls == 1


@pytest.mark.asyncio
async def test_running_out_of_attempts_raises_a_distinct_error_with_the_last_one() -> None:
    last = Flaky("third")
    operation = Script(Flaky(), Flaky(), last)
    with pytest.raises(RetriesExhausted) as caught:
        await with_retry(operation, is_retryable=retry_flaky, max_attempts=3, sleep=Sleeps())
    assert caught.value.attempts == 3
    assert caught.value.reason == "attempts"
    assert caught.value.last is last
    assert caught.value.__cause__ is last


@pytest.mark.asyncio
async def test_never_sleeps_past_the_deadline() -> None:
    operation, sleeps = Script(*[Flaky() for _ in range(10)]), Sleeps()
    deadline = asyncio.get_running_loop().time() + 0.05  # shorter than the first wait
    with pytest.raises(RetriesExhausted) as caught:
        await with_retry(
            operation,
            is_retryable=retry_flaky,
            backoff=NO_JITTER,
            max_attempts=None,
            deadline=deadline,
            sleep=sleeps,
        )
    assert caught.value.reason == "deadline"
    assert sleeps.waits == []


@pytest.mark.asyncio
async def test_may_retry_can_refuse_a_retry() -> None:
    operation = Script(Flaky(), Flaky())
    with pytest.raises(RetriesExhausted) as caught:
        await with_retry(
            operation, is_retryable=retry_flaky, may_retry=lambda: False, sleep=Sleeps()
        )
    assert caught.value.reason == "denied"
    assert operation.calls == 1


@pytest.mark.asyncio
async def test_on_retry_is_told_each_attempt_and_its_wait() -> None:
    seen: list[tuple[int, float]] = []
    await with_retry(
        Script(Flaky(), Flaky()),
        is_retryable=retry_flaky,
        backoff=NO_JITTER,
        on_retry=lambda attempt, exc, delay: seen.append((attempt, delay)),
        sleep=Sleeps(),
    )
    assert seen == [(1, pytest.approx(0.1)), (2, pytest.approx(0.2))]


@pytest.mark.asyncio
async def test_cancelling_the_caller_stops_the_retries() -> None:
    calls = 0
    tried = asyncio.Event()

    async def always_fails() -> None:
        nonlocal calls
        calls += 1
        tried.set()
        raise Flaky()

    task = asyncio.create_task(
        with_retry(
            always_fails,
            is_retryable=retry_flaky,
            backoff=Backoff(initial_delay=10.0, max_delay=10.0),
            max_attempts=None,
        )
    )
    await tried.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1
