"""When a bench counts every event as handled: a drained state seen twice in
a row, timed at the first of those polls."""

from __future__ import annotations

import time

import pytest

from ec_recommend.runtime.quiescence import BrokerReport, Quiescence


def _report(visible: int = 0, in_flight: int = 0, dead: int = 0) -> BrokerReport:
    return BrokerReport(
        calls={},
        queues={
            "email-notification-queue": {"visible": visible, "in_flight": in_flight, "delayed": 0},
            "email-notification-dlq": {"visible": dead, "in_flight": 0, "delayed": 0},
        },
    )


class _Scripted:
    """Polls answered from a script of (unpublished events, broker report),
    remembering when each poll was answered."""

    def __init__(self, script: list[tuple[int, BrokerReport]]) -> None:
        self._script = script
        self.polls = 0
        self.answered_at: list[float] = []

    async def unpublished(self) -> int:
        return self._script[min(self.polls, len(self._script) - 1)][0]

    async def report(self) -> BrokerReport:
        _, report = self._script[min(self.polls, len(self._script) - 1)]
        self.polls += 1
        self.answered_at.append(time.perf_counter())
        return report


@pytest.mark.asyncio
async def test_settled_is_timed_at_the_first_poll_of_the_drained_streak() -> None:
    drained = _report()
    script = _Scripted(
        [
            (3, _report()),  # events still in an outbox
            (0, _report(visible=2)),
            (0, drained),  # drained once, then a message appears again
            (0, _report(in_flight=1)),
            (0, drained),  # the streak that counts starts here
            (0, _report(dead=1)),  # a dead letter is handled, not in flight
        ]
    )
    settled = await Quiescence(script.unpublished, script.report).settled(timeout=5, interval=0)

    assert script.polls == 6
    assert script.answered_at[4] <= settled.drained_at < script.answered_at[5]
    assert settled.report.dead_letters() == 1


@pytest.mark.asyncio
async def test_settled_gives_up_with_what_is_left() -> None:
    script = _Scripted([(2, _report(in_flight=4))])
    with pytest.raises(TimeoutError, match="2 event\\(s\\) unpublished, 4 message\\(s\\) queued"):
        await Quiescence(script.unpublished, script.report).settled(timeout=0, interval=0)
