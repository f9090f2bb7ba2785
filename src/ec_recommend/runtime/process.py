"""Process entry points: event loop, signals, logging, ready reporting."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import uvloop

from ec_recommend.config import Config

log = logging.getLogger(__name__)


def configure_logging(config: Config) -> None:
    logging.basicConfig(
        level=config.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


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
