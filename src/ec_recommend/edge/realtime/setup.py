"""Wiring push into the gateway app: ``add_realtime(app, config)``.

Opens the hub and the fan-out backend with the app and closes them with it;
on shutdown every socket is closed with 1001 (going away) before the
backend goes, so clients reconnect elsewhere and resume with
``last_event_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from aiohttp import web

from ec_recommend.config import Config
from ec_recommend.edge.realtime.fanout import Fanout, hub_sink, local_fanout, published_fanout
from ec_recommend.edge.realtime.handler import (
    REALTIME,
    Realtime,
    SocketSettings,
    websocket_handler,
)
from ec_recommend.edge.realtime.hub import GOING_AWAY, Hub, Limits
from ec_recommend.edge.realtime.metrics import RealtimeMetrics, prometheus_metrics
from ec_recommend.platform.events.published_here import PublishedHere
from ec_recommend.platform.events.topology import load_topology

log = logging.getLogger(__name__)

WS_PATH = "/api/v1/ws"
_EXPIRY_INTERVAL = 10.0
_START_TIMEOUT = 15.0


def backend_of(config: Config, published_here: PublishedHere | None = None) -> str:
    """``realtime.backend``, or for ``auto``: Redis when configured, else with
    events the relays of this process when they publish everything pushed
    (``published_here.complete``), else a queue of this process's own."""
    chosen = config.realtime.backend
    if chosen != "auto":
        return chosen
    if config.realtime.redis_url or config.gateway.redis_url:
        return "redis"
    if not config.events.enabled:
        return "local"
    return "process" if published_here is not None and published_here.complete else "sqs"


def limits_of(config: Config) -> Limits:
    rt = config.realtime
    return Limits(
        connections=rt.connections,
        connections_per_user=rt.connections_per_user,
        subscriptions_per_connection=rt.subscriptions_per_connection,
        send_queue=rt.send_queue,
        replay_window=rt.replay_window,
        replay_per_topic=rt.replay_per_topic,
    )


def _fanout(
    config: Config, hub: Hub, published_here: PublishedHere | None
) -> AbstractAsyncContextManager[Fanout]:
    backend = backend_of(config, published_here)
    sink = hub_sink(hub)
    rt = config.realtime
    wait = min(config.events.consumer_wait_seconds, 5)
    if backend == "redis":
        from ec_recommend.edge.realtime.redis_fanout import redis_fanout

        url = rt.redis_url or config.gateway.redis_url
        assert url is not None
        topology = load_topology(config.events.topology_path) if config.events.enabled else None
        return redis_fanout(
            url,
            sink,
            events=config.events,
            topology=topology,
            retention=rt.queue_retention,
            wait_seconds=wait,
        )
    if backend == "sqs":
        from ec_recommend.edge.realtime.sqs_fanout import sqs_fanout

        return sqs_fanout(
            config.events,
            load_topology(config.events.topology_path),
            sink,
            retention=rt.queue_retention,
            instance_ttl=rt.instance_ttl,
            wait_seconds=wait,
            published_here=published_here,
        )
    if backend == "process":
        assert published_here is not None
        return published_fanout(published_here, sink)
    return local_fanout(sink)


@asynccontextmanager
async def open_realtime(
    config: Config,
    metrics: RealtimeMetrics | None = None,
    published_here: PublishedHere | None = None,
) -> AsyncIterator[Realtime]:
    hub = Hub(limits_of(config), metrics or prometheus_metrics())
    settings = SocketSettings(
        heartbeat=config.realtime.heartbeat,
        idle_timeout=config.realtime.idle_timeout,
        max_message_bytes=config.realtime.max_message_bytes,
    )
    async with AsyncExitStack() as stack:
        fanout: Fanout
        try:
            fanout = await asyncio.wait_for(
                stack.enter_async_context(_fanout(config, hub, published_here)), _START_TIMEOUT
            )
        except Exception:
            # REST must not go down with push: serve what this process sees
            log.exception(
                "realtime push: %s fan-out unavailable; local only",
                backend_of(config, published_here),
            )
            fanout = await stack.enter_async_context(local_fanout(hub_sink(hub)))
        log.info("realtime push: %s fan-out", fanout.name)
        expiry = asyncio.create_task(_expire(hub))
        try:
            yield Realtime(hub, settings, fanout)
        finally:
            expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await expiry


async def _expire(hub: Hub) -> None:
    while True:
        await asyncio.sleep(_EXPIRY_INTERVAL)
        hub.expire_rings()


async def close_sockets(app: web.Application, timeout: float = 3.0) -> None:
    """Close every socket with 1001 and wait (bounded) for their handlers to finish."""
    realtime = app.get(REALTIME)
    if realtime is None:
        return
    realtime.hub.close_all(GOING_AWAY, "server shutting down")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(realtime.hub.wait_empty(), timeout)


def add_realtime(
    app: web.Application, config: Config, published_here: PublishedHere | None = None
) -> None:
    """Serve ``GET /api/v1/ws`` on ``app``; ``published_here``: see ``backend_of``."""

    async def resources(app: web.Application) -> AsyncIterator[Any]:
        async with open_realtime(config, published_here=published_here) as realtime:
            app[REALTIME] = realtime
            yield

    app.cleanup_ctx.append(resources)
    app.on_shutdown.append(close_sockets)
    app.router.add_get(WS_PATH, websocket_handler, allow_head=False)
