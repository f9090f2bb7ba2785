"""The client repeats a keyed write while its outcome is unknown, and no more."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import pytest

from ec_recommend import client_errors as api
from ec_recommend.client_retry import NEVER, WriteRetry, repeat_write, worth_repeating

pytestmark = pytest.mark.asyncio

POLICY = WriteRetry()


def timed_out() -> api.ApiError:
    return api.Timeout(504, "may have been applied", {"outcome": "unknown"})


def unavailable(retry_after: str | None = None) -> api.ApiError:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return api.ServiceUnavailable(503, "busy", headers=headers)


class Server:
    """Answers each request with the next scripted outcome."""

    def __init__(self, *outcomes: Exception | str) -> None:
        self.outcomes = list(outcomes)
        self.requests = 0
        self.waits: list[float] = []

    async def send(self) -> str:
        self.requests += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


async def run(server: Server, policy: WriteRetry = POLICY) -> str:
    return await repeat_write(server.send, policy, sleep=server.sleep)


async def test_a_write_that_timed_out_is_sent_again_until_it_has_an_answer() -> None:
    server = Server(timed_out(), aiohttp.ServerDisconnectedError(), "created")
    assert await run(server) == "created"
    assert server.requests == 3


async def test_retry_after_is_honoured() -> None:
    server = Server(unavailable("3"), "created")
    assert await run(server) == "created"
    assert server.waits == [3.0]


async def test_a_wait_longer_than_max_wait_ends_the_retries() -> None:
    server = Server(unavailable("120"), "created")
    with pytest.raises(api.ServiceUnavailable):
        await run(server, WriteRetry(max_wait=30.0))
    assert server.requests == 1


async def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    server = Server(*(timed_out() for _ in range(4)), "never reached")
    with pytest.raises(api.Timeout) as caught:
        await run(server)
    assert caught.value.details["outcome"] == "unknown"
    assert server.requests == POLICY.attempts


async def test_never_sends_once() -> None:
    server = Server(timed_out(), "created")
    with pytest.raises(api.Timeout):
        await run(server, NEVER)
    assert server.requests == 1


@pytest.mark.parametrize(
    ("error", "repeat"),
    [
        (lambda: api.Timeout(504, "unknown", {"outcome": "unknown"}), True),
        (lambda: api.InternalError(504, "a proxy's timeout"), True),
        (lambda: api.RateLimited(429, "slow", headers={"Retry-After": "2"}), True),
        (lambda: api.Conflict(409, "in progress", headers={"Retry-After": "1"}), True),
        (lambda: api.Conflict(409, "key used for another body"), False),
        (lambda: api.PaymentDeclined(402, "declined"), False),
        (lambda: api.InvalidRequest(400, "bad"), False),
        (lambda: api.InternalError(500, "bug"), False),
        (lambda: aiohttp.ClientOSError(104, "connection reset by peer"), True),
        (lambda: TimeoutError(), False),  # the client's own budget ran out
        (lambda: aiohttp.ServerTimeoutError("read timed out"), False),
    ],
)
async def test_what_is_worth_repeating(error: Callable[[], Exception], repeat: bool) -> None:
    assert worth_repeating(error(), POLICY) is repeat
