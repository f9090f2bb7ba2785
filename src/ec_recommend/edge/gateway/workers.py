"""Gateway worker processes: ``--workers N`` serves the REST gateway from N processes.

The process that runs ``up`` or ``serve gateway`` keeps serving the gateway
and starts N-1 worker processes listening on the same port (SO_REUSEPORT):
the kernel spreads connections over the N of them, so the edge uses more
than one core. A worker is only a gateway: it reaches the services over the
mesh (gRPC, with mTLS when configured) at the endpoints the parent gives it.

What the processes share, and how:

- rate limits: Redis when ``EC_RATE_LIMIT_BACKEND=redis`` (exact shared
  budgets). With the in-memory backend each process enforces 1/N of every
  budget (``per_process_limits``), so the sum stays the configured budget; a
  client whose requests all land on one process (one keep-alive connection)
  gets 1/N of it.
- the product cache: Redis when ``EC_CACHE_REDIS_URL`` is set (one shared
  cache). Otherwise each process has its own, and every invalidation made in
  the parent (product events through the cache-invalidation consumer, the
  gateway's own writes) is forwarded to every worker; a worker's own writes
  go to the parent, which forwards them to all.
- WebSocket push: each process subscribes to the push fan-out itself (its
  own SQS instance queue, or Redis), so an event reaches sockets on any
  process. Without events or Redis ("local" fan-out) a worker sees nothing.
- /metrics and /healthz answer for the process that took the connection
  (``/healthz`` says which: its ``pid``).

A worker reads the parent's instructions on stdin (its spec, then product
ids to invalidate) and exits when stdin closes: when the parent stops or
dies, so do its workers. It writes JSON lines to stdout ({"ready": pid},
{"invalidate": id}). A worker that exits unexpectedly is logged and started
again (after a growing pause while it keeps crashing).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import json
import logging
import math
import os
import pickle
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from ec_recommend.config import Config
from ec_recommend.config.storage import Endpoint
from ec_recommend.platform import heap

log = logging.getLogger(__name__)

COGNITO_SETUP = "ec_recommend.edge.gateway.workers:cognito_worker_setup"
_READY_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0
_RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds, while it keeps crashing
_STABLE_AFTER = 60.0
_SPEC_LIMIT = 16 * 1024 * 1024  # bytes of one stdin line (the pickled spec)

# (config, services /readyz checks) -> GatewaySetup; named "module:function"
# so a worker process can import it.
SetupFactory = Callable[[Config, Sequence[str]], Any]


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs: its whole configuration comes from the parent."""

    config: Config  # gateway.port is the bound port; rpc.endpoints reach every service
    services: tuple[str, ...] = ()
    setup: str = COGNITO_SETUP
    # Spans as ``up``/``serve`` make them (the OpenTelemetry SDK, exported when
    # configured); False leaves them no-ops, as in a process that installs none.
    traced: bool = True


def cognito_worker_setup(config: Config, services: Sequence[str]) -> Any:
    from ec_recommend.edge.gateway.app import cognito_setup

    return cognito_setup(config, services=services)


def per_process_limits(config: Config, processes: int) -> Config:
    """``config`` for one of ``processes`` gateway processes: in-memory budgets divided.

    Redis budgets are shared, so they stay whole.
    """
    gateway = config.gateway
    if processes <= 1 or gateway.rate_limit_backend == "redis":
        return config

    def share(limit: int) -> int:
        return max(1, math.ceil(limit / processes))

    return replace(
        config,
        gateway=replace(
            gateway,
            rate_limit_anonymous=share(gateway.rate_limit_anonymous),
            rate_limit_authenticated=share(gateway.rate_limit_authenticated),
            rate_limit_seller=share(gateway.rate_limit_seller),
        ),
    )


def worker_spec(
    config: Config,
    *,
    port: int,
    endpoints: Mapping[str, str],
    services: Sequence[str] = (),
    setup: str = COGNITO_SETUP,
    traced: bool = True,
) -> WorkerSpec:
    """A worker of a gateway bound to ``port``, dialling ``endpoints`` (name -> host:port)
    for the services its parent hosts and ``config.rpc.endpoints`` for the others."""
    dialled = dict(config.rpc.endpoints)
    for name, address in endpoints.items():
        dialled[name] = (Endpoint.parse(address, key=f"endpoints.{name}"),)
    worker = replace(
        config,
        gateway=replace(config.gateway, port=port),
        rpc=replace(config.rpc, endpoints=dialled, ports={}),
    )
    return WorkerSpec(config=worker, services=tuple(services), setup=setup, traced=traced)


class GatewayWorkers:
    """``async with GatewayWorkers(spec, count, cache):`` - ``count`` workers, supervised.

    ``cache`` is the parent's in-process product cache (None when the cache is
    shared in Redis or off): its invalidations are forwarded to every worker.
    Entering returns once every worker listens.
    """

    def __init__(self, spec: WorkerSpec, count: int, cache: Any = None) -> None:
        self.spec = spec
        self.count = count
        self.cache = cache
        self.restarts = 0
        self._workers: list[_Worker] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process is not None]

    async def __aenter__(self) -> GatewayWorkers:
        # Forwarding starts first: a worker may cache as soon as it listens.
        # (Ids sent before it reads them queue behind its spec on stdin.)
        if self.cache is not None:
            self.cache.listeners.append(self._forward)
        try:
            for index in range(self.count):
                worker = _Worker(self, index)
                self._workers.append(worker)
                await worker.start()
        except BaseException:
            await self._stop()
            raise
        for worker in self._workers:
            worker.supervise()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    def begin_stop(self) -> None:
        """Tell every worker to stop, without waiting: the parent's own gateway
        can shut down meanwhile (exiting the context waits for the workers)."""
        self._stopping = True
        if self.cache is not None and self._forward in self.cache.listeners:
            self.cache.listeners.remove(self._forward)
        for worker in self._workers:
            worker.begin_stop()

    async def _stop(self) -> None:
        self.begin_stop()
        await asyncio.gather(*(worker.stop() for worker in self._workers))

    def _forward(self, product_id: str) -> None:
        for worker in self._workers:
            worker.send(product_id)

    async def _invalidate(self, product_id: str) -> None:
        """A worker's own write: invalidate here, which forwards it to every worker."""
        if self.cache is not None:
            await self.cache.invalidate(product_id)


class _Worker:
    def __init__(self, owner: GatewayWorkers, index: int) -> None:
        self.owner = owner
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # The worker imports what this process imports (the same code).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            limit=_SPEC_LIMIT,
        )
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        spec = base64.b64encode(pickle.dumps(self.owner.spec))
        process.stdin.write(spec + b"\n")
        try:
            line = await asyncio.wait_for(process.stdout.readline(), _READY_TIMEOUT)
            ready = json.loads(line) if line else {}
        except (TimeoutError, ValueError):
            ready = {}
        if "ready" not in ready:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise RuntimeError(
                f"gateway worker {self.index} did not start (exit code {process.returncode})"
            )
        log.info("gateway worker %d (pid %d) listening", self.index, process.pid)
        self._reader = asyncio.create_task(self._read(process), name=f"gateway-worker-{self.index}")

    def supervise(self) -> None:
        self._supervisor = asyncio.create_task(
            self._supervise(), name=f"gateway-worker-{self.index}-supervisor"
        )

    def send(self, product_id: str) -> None:
        process = self.process
        if process is None or process.stdin is None or process.stdin.is_closing():
            return
        process.stdin.write(product_id.encode() + b"\n")

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and isinstance(message.get("invalidate"), str):
                await self.owner._invalidate(message["invalidate"])

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        crashes = 0
        while True:
            process = self.process
            assert process is not None
            since = loop.time()
            code = await process.wait()
            if self.owner._stopping:
                return
            if loop.time() - since > _STABLE_AFTER:
                crashes = 0  # it had been running well: not a crash loop
            delay = _RESTART_DELAYS[min(crashes, len(_RESTART_DELAYS) - 1)]
            crashes += 1
            log.error(
                "gateway worker %d (pid %d) exited with %s; starting it again in %.1fs",
                self.index,
                process.pid,
                code,
                delay,
            )
            await asyncio.sleep(delay)
            if self.owner._stopping:
                return
            try:
                await self.start()
            except Exception:
                log.exception("gateway worker %d: cannot start it again", self.index)
                continue
            self.owner.restarts += 1

    def begin_stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        process = self.process
        if process is not None and process.stdin is not None:
            process.stdin.close()  # the worker stops when its stdin closes

    async def stop(self) -> None:
        self.begin_stop()
        if self._supervisor is not None:
            await asyncio.gather(self._supervisor, return_exceptions=True)
        process = self.process
        if process is None:
            return
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
        except TimeoutError:
            log.warning("gateway worker %d did not stop; killing it", self.index)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


# -- in the worker process -----------------------------------------------------


def _emit(message: Mapping[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _factory(reference: str) -> SetupFactory:
    module, _, name = reference.partition(":")
    factory: SetupFactory = getattr(importlib.import_module(module), name)
    return factory


async def _serve(reader: asyncio.StreamReader, spec: WorkerSpec) -> None:
    from ec_recommend.edge.gateway.app import create_app, serving
    from ec_recommend.edge.gateway.keys import PRODUCT_CACHE
    from ec_recommend.platform.cache import LocalProductCache

    config = spec.config
    app = create_app(_factory(spec.setup)(config, spec.services))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with serving(app, config.gateway.host, config.gateway.port, reuse_port=True):
        cache = app[PRODUCT_CACHE]
        local = cache if isinstance(cache, LocalProductCache) else None
        if local is not None:
            # this worker's own writes: the parent tells every process
            local.listeners.append(lambda product_id: _emit({"invalidate": product_id}))
        heap.settle()
        _emit({"ready": os.getpid()})

        async def instructions() -> None:
            while line := await reader.readline():
                product_id = line.decode().strip()
                if product_id and local is not None:
                    local.drop(product_id)  # made elsewhere: not sent back

        listening = asyncio.create_task(instructions())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({listening, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (listening, stopped):
            task.cancel()
        await asyncio.gather(listening, stopped, return_exceptions=True)
        # A stopping parent waits _STOP_TIMEOUT for its workers; a dead one waits
        # for nothing. Either way do not linger (a dead broker can stall the
        # push fan-out's teardown for half a minute).
        asyncio.get_running_loop().call_later(_STOP_TIMEOUT - 1, _exit_late)


def _exit_late() -> None:
    log.warning("gateway worker %d: shutdown took too long; exiting", os.getpid())
    logging.shutdown()
    os._exit(0)


async def _main() -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_SPEC_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    line = await reader.readline()
    if not line:
        return 0  # the parent went away before sending the spec
    # The spec comes from the parent process over a private pipe: same program.
    spec: WorkerSpec = pickle.loads(base64.b64decode(line))
    from ec_recommend.runtime import process

    process.configure_logging(spec.config, "gateway-worker")
    if not spec.traced:
        await _serve(reader, spec)
        return 0
    with process.traced(spec.config, "gateway-worker"):
        await _serve(reader, spec)
    return 0


def main() -> int:
    # Ctrl-C and a closed terminal (SIGHUP) reach the whole process group: the
    # parent stops its workers itself (closing their stdin), in order, after its
    # own drain.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from ec_recommend.runtime import process

    return process.run(_main())


if __name__ == "__main__":
    sys.exit(main())
