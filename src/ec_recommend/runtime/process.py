"""Process entry points: event loop, signals, logging, tracing, ready reporting."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import uvloop

from ec_recommend.config import Config
from ec_recommend.platform.telemetry.export import tracing
from ec_recommend.platform.telemetry.logging import configure_logging as configure_log_output
from ec_recommend.platform.telemetry.messaging import use_consumer_links

log = logging.getLogger(__name__)


def configure_logging(config: Config, service: str = "ec-recommend") -> None:
    """JSON lines on stderr (human-readable text on a terminal), with trace ids."""
    configure_log_output(config.log_level, log_format=config.telemetry.log_format, service=service)


@contextmanager
def traced(config: Config, service: str) -> Iterator[None]:
    """Spans for this process; exported over OTLP when an endpoint is configured."""
    use_consumer_links(config.telemetry.consumer_links)
    with tracing(config.telemetry, config.telemetry.service_name or service):
        yield


def run(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop; one process, one event loop."""
    return uvloop.run(main)


async def until_stopped(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``body`` with an event that SIGTERM or SIGINT sets."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await body(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def report_ready(**fields: Any) -> None:
    """One JSON line on stdout that tools and tests wait for."""
    print(json.dumps({"event": "ready", **fields}), flush=True)
