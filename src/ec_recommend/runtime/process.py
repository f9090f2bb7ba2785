"""Process entry points: event loop, signals, logging, tracing, ready reporting."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

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


# SIGHUP too: closing the terminal must stop the system as cleanly as Ctrl-C,
# not kill this process and leave its children behind.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


async def until_stopped(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``body`` with an event that SIGTERM, SIGINT or SIGHUP sets."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        await body(stop)
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, checked before any startup work; or None.

    Binds as the server will (SO_REUSEADDR), so a port left in TIME_WAIT by
    the last run counts as free.
    """
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}: {exc.strerror}"
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return f"port {port} on {host} is in use"
                return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def report_ready(**fields: Any) -> None:
    """One JSON line on stdout that tools and tests wait for."""
    print(json.dumps({"event": "ready", **fields}), flush=True)


def unreachable(url: str, timeout: float = 3.0) -> str | None:
    """Why nothing answers at ``url``'s host and port (one line), or None when something does.

    Checked before talking to a configured endpoint, so a wrong one is named
    at once instead of after the AWS client's retries.
    """
    parsed = urlsplit(url)
    host = parsed.hostname or "localhost"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"nothing answers at {url}: {exc.strerror or exc}"
