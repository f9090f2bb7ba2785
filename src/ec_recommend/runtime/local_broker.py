"""The local broker kept alive: moto's child restarted on its port when it dies.

``LocalBroker`` starts moto's server (``local_aws.start_moto``) and watches
it. If the child dies while we run, the broker is ``down`` until a new child
answers on the same port (every client's endpoint stays valid) and
``on_restart`` has put back what the old one held (pool, topology) and had
the outbox replay what was sent to it. A paused child that stops answering
is reported ``down`` too, by a light probe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Literal
from urllib.parse import urlparse

import aiohttp

from ec_recommend.platform.aws import LocalAws
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.retry import Backoff, RetriesExhausted, with_retry
from ec_recommend.runtime.local_aws import MotoChild, moto_ready, start_moto, stop_moto

log = logging.getLogger(__name__)

BrokerState = Literal["up", "down"]
OnRestart = Callable[[LocalAws, datetime], Awaitable[None]]
"""Restores a fresh broker; gets the start time of the child that died."""

_PROBE_EVERY = 2.0  # seconds
_PROBE_TIMEOUT = 2.0
_RESTART_BACKOFF = Backoff(initial_delay=0.2, max_delay=5.0)


class LocalBroker:
    """``async with LocalBroker(host) as broker:`` moto's server, supervised.

    ``spawned``: a child started earlier (``local_aws.spawned_moto``), taken
    over here, so its start overlaps what the caller did meanwhile.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, spawned: MotoChild | None = None
    ) -> None:
        self.host = host
        self.port = port
        self._spawned = spawned
        self.on_restart: OnRestart | None = None
        self.restarts = 0
        self.started_at: datetime = utcnow()
        self._child: asyncio.subprocess.Process | None = None
        self._aws: LocalAws | None = None
        self._restoring = False
        self._answering = True
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def aws(self) -> LocalAws:
        assert self._aws is not None, "the broker has not started"
        return self._aws

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    def state(self) -> BrokerState:
        """What ``/readyz`` reports: ``up`` only when the child runs, answers and is restored."""
        running = self._child is not None and self._child.returncode is None
        return "up" if running and self._answering and not self._restoring else "down"

    async def __aenter__(self) -> LocalBroker:
        if self._spawned is not None:
            self._child, self._aws = self._spawned.process, await moto_ready(self._spawned)
        else:
            self._child, self._aws = await start_moto(self.host, self.port)
        self.port = int(urlparse(self._aws.endpoint_url).port or 0)
        self.started_at = utcnow()
        self._tasks = [
            asyncio.create_task(self._supervise(), name="local-broker-supervisor"),
            asyncio.create_task(self._probe(), name="local-broker-probe"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._child is not None:
            await stop_moto(self._child)

    async def _supervise(self) -> None:
        while True:
            assert self._child is not None
            code = await self._child.wait()
            died_started_at = self.started_at
            self._restoring = True
            log.warning(
                "local AWS (moto) exited with code %s; restarting it on port %d", code, self.port
            )
            try:
                await with_retry(
                    partial(self._restart, died_started_at),
                    is_retryable=lambda _exc: True,
                    backoff=_RESTART_BACKOFF,
                    max_attempts=None,
                    on_retry=self._report_failed_restart,
                )
            except RetriesExhausted:  # pragma: no cover - unbounded attempts never run out
                return
            self._restoring = False
            self.restarts += 1
            log.info("local AWS (moto) is back on port %d", self.port)

    async def _restart(self, died_started_at: datetime) -> None:
        child, aws = await start_moto(self.host, self.port)
        try:
            if self.on_restart is not None:
                await self.on_restart(aws, died_started_at)
        except BaseException:
            await stop_moto(child)
            raise
        self._child, self._aws = child, aws
        self._answering = True
        self.started_at = utcnow()

    def _report_failed_restart(self, attempt: int, exc: Exception, delay: float) -> None:
        log.warning("local AWS (moto): restart %d failed (%s); again in %.1fs", attempt, exc, delay)

    async def _probe(self) -> None:
        """Notice a child that runs but does not answer (paused, wedged)."""
        timeout = aiohttp.ClientTimeout(total=_PROBE_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await asyncio.sleep(_PROBE_EVERY)
                if self._restoring or self._aws is None:
                    continue
                answering = False
                with suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self._aws.endpoint_url}/moto-api/config") as reply:
                        answering = reply.status < 500
                if answering != self._answering:
                    log.warning(
                        "local AWS (moto) %s", "answers again" if answering else "does not answer"
                    )
                self._answering = answering
