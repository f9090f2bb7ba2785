"""moto's server as a child process: the local stand-in for AWS.

SNS, SQS, Cognito and SES are always reached through aiobotocore; locally the
endpoint is this child, in production it is AWS. The child is a separate
process (not a thread in the serving process) so its CPU work never stalls
our event loop. It is stopped with us, and dies with us too: on Linux the
kernel sends it SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), so a
kill -9 of ``up`` leaves no broker behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ec_recommend.platform.local_endpoint import LocalAws

# Light on purpose (aiohttp and aiobotocore are imported where they are
# used): ``up`` spawns the child before it imports the rest of itself.
log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
# A refused connection costs next to nothing; up's start waits on this poll.
_READY_POLL = 0.02  # seconds


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _dies_with(parent: int) -> Callable[[], None] | None:
    """A preexec hook asking the kernel for SIGTERM when ``parent`` dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the hook ran
            os._exit(1)

    return hook


@dataclass(frozen=True)
class MotoChild:
    """A moto server started, perhaps not answering yet (``moto_ready``)."""

    process: asyncio.subprocess.Process
    endpoint_url: str


async def spawn_moto(host: str = "127.0.0.1", port: int = 0) -> MotoChild:
    """Start moto's server on ``port`` (0 = a free one) without waiting for it."""
    port = port or free_port(host)
    env = dict(os.environ)
    env.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    # Pool and app client ids from their names, not from moto's random state:
    # a restarted child then gives the pool the id every issued token names.
    env.setdefault("MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY", "HASH")
    env.setdefault("MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY", "HASH")
    # moto's server runs a thread per connection, all under one GIL: glibc's
    # arena per thread only held memory (~6 MB of the broker's RSS).
    env.setdefault("MALLOC_ARENA_MAX", "2")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ec_recommend.runtime.moto_main",  # moto's server, patched for large backlogs
        "-H",
        host,
        "-p",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it
        preexec_fn=_dies_with(os.getpid()),
    )
    return MotoChild(child, f"http://{host}:{port}")


async def moto_ready(child: MotoChild, ready_timeout: float = 30.0) -> LocalAws:
    """Once ``child`` answers, where it listens (it is stopped if it never does)."""
    try:
        await _wait_ready(child.endpoint_url, child.process, ready_timeout)
    except BaseException:
        await stop_moto(child.process)
        raise
    log.info("local AWS (moto) listening on %s (pid %d)", child.endpoint_url, child.process.pid)
    return LocalAws(endpoint_url=child.endpoint_url)


async def start_moto(
    host: str = "127.0.0.1", port: int = 0, *, ready_timeout: float = 30.0
) -> tuple[asyncio.subprocess.Process, LocalAws]:
    """Start moto's server on ``port`` (0 = a free one); returns once it answers."""
    child = await spawn_moto(host, port)
    return child.process, await moto_ready(child, ready_timeout)


@asynccontextmanager
async def spawned_moto(host: str = "127.0.0.1") -> AsyncIterator[MotoChild]:
    """A child spawned now, for a ``LocalBroker`` made later (which then owns
    it); stopped on exit unless it already was."""
    child = await spawn_moto(host)
    try:
        yield child
    finally:
        await stop_moto(child.process)


@asynccontextmanager
async def moto_server(
    host: str = "127.0.0.1", port: int = 0, *, ready_timeout: float = 30.0
) -> AsyncIterator[LocalAws]:
    """Start moto's server on ``port`` (0 = a free one) and stop it on exit."""
    child, aws = await start_moto(host, port, ready_timeout=ready_timeout)
    try:
        yield aws
    finally:
        await stop_moto(child)


async def _wait_ready(endpoint: str, child: asyncio.subprocess.Process, timeout: float) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if child.returncode is not None:
                raise RuntimeError(f"moto server exited with code {child.returncode}")
            try:
                async with session.get(f"{endpoint}/moto-api/data.json") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if loop.time() > deadline:
                raise TimeoutError(f"moto server did not start within {timeout}s")
            await asyncio.sleep(_READY_POLL)


async def stop_moto(child: asyncio.subprocess.Process) -> None:
    if child.returncode is not None:
        return
    child.send_signal(signal.SIGCONT)  # a paused child could not act on SIGTERM
    child.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(child.wait(), 5)
    except TimeoutError:
        child.kill()
        await child.wait()
