"""Client-side load balancing over a service's endpoints, with ejection.

Calls go round robin over the endpoints in rotation; each endpoint keeps
``pool_size`` HTTP/2 connections, also used round robin (seed 10.1). An
endpoint that fails ``consecutive_failures`` times in a row (unreachable or
UNAVAILABLE) leaves the rotation for ``ejection_time``; then a grpc.health.v1
check probes it, and only a SERVING answer brings it back. When every
endpoint is out, calls go to all of them anyway ("panic" routing), so the
circuit breaker rather than the balancer decides to fail fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from grpclib.client import Channel
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from ec_recommend.config import Endpoint
from ec_recommend.platform.rpc.mesh import OutlierPolicy

log = logging.getLogger(__name__)

ChannelFactory = Callable[[Endpoint, str | None], Channel]
HealthListener = Callable[[str, Endpoint, bool], None]


@dataclass
class EndpointState:
    endpoint: Endpoint
    healthy: bool = True
    failures: int = 0
    ejected_until: float = 0.0
    probing: bool = False
    # connections per client identity (one cert per calling service)
    channels: dict[str | None, itertools.cycle[Channel]] = field(default_factory=dict)
    all_channels: list[Channel] = field(default_factory=list)


class Balancer:
    """Picks the endpoint (and connection) for each call to one service."""

    def __init__(
        self,
        service: str,
        endpoints: Sequence[Endpoint],
        policy: OutlierPolicy,
        make_channel: ChannelFactory,
        *,
        pool_size: int = 2,
        on_health: HealthListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ValueError("a balancer needs at least one endpoint")
        self.service = service
        self.policy = policy
        self.endpoints = [EndpointState(ep) for ep in dict.fromkeys(endpoints)]
        self._make_channel = make_channel
        self._pool_size = pool_size
        self._on_health = on_health
        self._clock = clock
        self._next = 0
        self._probes: set[asyncio.Task[None]] = set()

    def choose(self, identity: str | None = None) -> EndpointState:
        """The next endpoint in rotation (starting probes of ejected ones that are due).

        A probe presents ``identity``, the certificate of the call that
        scheduled it: a process hosting only consumers or services with
        their own certificates has no other to present.
        """
        now = self._clock()
        for state in self.endpoints:
            if not state.healthy and not state.probing and now >= state.ejected_until:
                self._start_probe(state, identity)
        healthy = [s for s in self.endpoints if s.healthy] or self.endpoints
        self._next = (self._next + 1) % len(healthy)
        return healthy[self._next]

    def pick(self) -> Channel:
        """A connection of the next endpoint, with the default identity."""
        return self.channel(self.choose(), None)

    def channel(self, state: EndpointState, identity: str | None) -> Channel:
        cycle = state.channels.get(identity)
        if cycle is None:
            created = [self._make_channel(state.endpoint, identity) for _ in range(self._pool_size)]
            state.all_channels.extend(created)
            cycle = state.channels[identity] = itertools.cycle(created)
        return next(cycle)

    def success(self, state: EndpointState) -> None:
        state.failures = 0

    def failure(self, state: EndpointState) -> None:
        state.failures += 1
        if state.healthy and state.failures >= self.policy.consecutive_failures:
            self._eject(state)

    def _eject(self, state: EndpointState) -> None:
        state.healthy = False
        state.ejected_until = self._clock() + self.policy.ejection_time
        log.warning("%s: endpoint %s ejected", self.service, state.endpoint)
        if self._on_health is not None:
            self._on_health(self.service, state.endpoint, False)

    def _restore(self, state: EndpointState) -> None:
        state.healthy = True
        state.failures = 0
        log.info("%s: endpoint %s back in rotation", self.service, state.endpoint)
        if self._on_health is not None:
            self._on_health(self.service, state.endpoint, True)

    def _start_probe(self, state: EndpointState, identity: str | None) -> None:
        state.probing = True
        task = asyncio.get_running_loop().create_task(self._probe(state, identity))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _probe(self, state: EndpointState, identity: str | None) -> None:
        try:
            serving = await self._check(state, identity)
        finally:
            state.probing = False
        if serving:
            self._restore(state)
        else:
            state.ejected_until = self._clock() + self.policy.ejection_time

    async def _check(self, state: EndpointState, identity: str | None) -> bool:
        # A fresh connection: the pooled ones may be half-dead.
        channel = self._make_channel(state.endpoint, identity)
        try:
            reply = await HealthStub(channel).Check(
                HealthCheckRequest(), timeout=self.policy.probe_timeout
            )
            return bool(reply.status == HealthCheckResponse.SERVING)
        except Exception:  # refused, TLS failure, timeout, any status: not serving
            return False
        finally:
            channel.close()

    def report(self) -> list[dict[str, object]]:
        return [{"address": str(s.endpoint), "healthy": s.healthy} for s in self.endpoints]

    async def close(self) -> None:
        for task in list(self._probes):
            task.cancel()
        for task in list(self._probes):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for state in self.endpoints:
            for channel in state.all_channels:
                channel.close()
                # grpc.aio channels (aio_channel.py) finish closing asynchronously
                wait_closed = getattr(channel, "wait_closed", None)
                if wait_closed is not None:
                    await wait_closed()
            state.all_channels.clear()
            state.channels.clear()
