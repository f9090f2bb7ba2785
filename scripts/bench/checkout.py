#!/usr/bin/env python
"""Checkout benchmarks, each against its baseline in the same run.

1. DataLoader (seed 10.2): pricing a cart of ``--items`` products, as the
   cart and order services do, three ways against one real ProductService
   (gRPC, SQLite):
     sequential   one GetProduct after another (the naive loop)
     concurrent   one GetProduct per item, all at once (asyncio.gather)
     dataloader   loader.load() per item, all at once: one GetProducts call
   Prints cart pricings/s of each and the speed-up of the DataLoader.

2. Orders through the gateway (``--gateway``): ``ec-recommend up`` in a child
   process; ``--concurrency`` logged-in buyers each create an order and pay
   it with tok_visa, in a closed loop for ``--seconds``; then the bench
   waits until every event of the run is handled (outboxes empty, subscriber
   queues drained; its readers are opened before the run, and the run ends
   at the first of the polls that saw it drained). Prints orders/s (while
   buying and with every event handled), p50/p99 latency of create+pay, the
   CPU per order of ``up``'s own process, of its local broker (moto) and of
   the bench itself (its buyers' HTTP clients and its polling: the load
   generator's share of the machine), read from /proc, and the broker calls
   per order, total and by action, as the broker counted them
   (``/_ec/calls``); CPU and calls include the tail after the buyers stop.
   ``--postgres``: on PostgreSQL (fresh schemas, dropped after).
   ``--split``: on PostgreSQL, ``ec-recommend serve`` over two processes
   (the request path: gateway, product, cart, order, and the gateway
   cache's invalidation | user, the other services and consumers;
   ``--front`` names the first process's services) and one moto child; CPU
   per order of each and together.
   With PostgreSQL on this machine, its server's CPU per order too (the
   main process, its live backends and those that ended meanwhile).
   Then the ceiling the machine's cores set: the orders/s they allow at the
   CPU per order measured (everything on the machine together), and with
   the project's processes costing nothing (the broker, the database server
   and the load generator alone). And everything's CPU as a multiple of the
   load generator's, whose work per order is fixed: the machine's speed
   moves both alike, so runs of one system in fast and slow minutes read
   about the same multiple where their ms per order differ.
Usage: .venv/bin/python scripts/bench/checkout.py [--items 20] [--rounds 200]
       [--gateway [--postgres | --split [--front gateway,user,...]]]
       [--concurrency 16] [--seconds 10]
       [--no-dataloader]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import aiohttp

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.client import Client
from ec_recommend.config import Config, EventsConfig, NotificationConfig, StorageConfig
from ec_recommend.platform.rpc.dataloader import product_loader
from ec_recommend.runtime.broker_calls import MOTO_API
from ec_recommend.runtime.host import host_services
from ec_recommend.runtime.local_aws import LocalAws, free_port, start_moto, stop_moto
from ec_recommend.runtime.quiescence import broker_report, calls_between, quiescence
from ec_recommend.runtime.registry import CONSUMERS, SERVICES

# A bench buyer orders many times a second, far past what the per-user
# limit lets a person do (1,000 requests a minute): the limiter still runs
# on every request, with room for the load.
BENCH_ENV = {"EC_TRUSTED_PROXIES": "127.0.0.1", "EC_RATE_LIMIT_AUTHENTICATED": "1000000"}
DATABASE_SERVER = "postgres"  # CpuMeter's name for the local PostgreSQL server
# CpuMeter's name for this process: the buyers' HTTP clients and the drain's
# polling, the share of the machine the measurement itself takes.
LOAD_GENERATOR = "bench"
POSTGRES_URL = os.environ.get("EC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _timed(rounds: int, price_cart: Callable[[], Awaitable[object]]) -> float:
    """Cart pricings per second over ``rounds`` rounds (after one warm-up)."""
    await price_cart()
    started = time.perf_counter()
    for _ in range(rounds):
        await price_cart()
    return rounds / (time.perf_counter() - started)


async def bench_dataloader(items: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        config = Config(storage=StorageConfig(data_dir=Path(data_dir)))
        async with host_services(config, ["product"]) as hosted:
            stub = hosted.clients.stub(pb.ProductServiceStub, "product")
            ids = [
                (
                    await stub.create_product(
                        pb.CreateProductRequest(
                            seller_id="bench-seller",
                            name=f"商品 {n}",
                            description="bench",
                            base_price=pb_common.Money(amount=1000 + n, currency="JPY"),
                            stock_quantity=100,
                        )
                    )
                ).id
                for n in range(items)
            ]

            async def sequential() -> None:
                for pid in ids:
                    await stub.get_product(pb.GetProductRequest(product_id=pid))

            async def concurrent() -> None:
                await asyncio.gather(
                    *(stub.get_product(pb.GetProductRequest(product_id=pid)) for pid in ids)
                )

            async def dataloader() -> None:
                loader = product_loader(stub)  # a fresh one per "request", as in the services
                products = await loader.load_many(ids)
                assert all(p is not None for p in products)

            results = {
                "sequential": await _timed(rounds, sequential),
                "concurrent": await _timed(rounds, concurrent),
                "dataloader": await _timed(rounds, dataloader),
            }
    print(f"DataLoader: pricing a cart of {items} products, {rounds} rounds each")
    for name, rate in results.items():
        print(f"  {name:<11} {rate:9.1f} carts/s  {1000 / rate:7.2f} ms/cart")
    print(
        f"  speed-up    {results['dataloader'] / results['sequential']:.1f}x vs sequential, "
        f"{results['dataloader'] / results['concurrent']:.1f}x vs concurrent single lookups"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: field 3 (state) onwards."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def postmaster_pid() -> int | None:
    """This machine's PostgreSQL server process, if it runs one (the bench's
    URL names 127.0.0.1): the ``postgres`` process whose parent is not one."""
    names: dict[int, tuple[str, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError):
            text = stat.read_text()
            name = text[text.index("(") + 1 : text.rindex(")")]
            names[int(stat.parent.name)] = (name, int(_stat_fields(int(stat.parent.name))[1]))
    for pid, (name, parent) in names.items():
        if name == "postgres" and names.get(parent, ("", 0))[0] != "postgres":
            return pid
    return None


def postgres_cpu_seconds(postmaster: int) -> float:
    """CPU time of the PostgreSQL server so far: its main process, the
    backends it has reaped (cutime, cstime) and those still running."""
    fields = _stat_fields(postmaster)
    ticks = sum(int(f) for f in fields[11:15])
    for task in Path(f"/proc/{postmaster}/task").iterdir():
        for child in (task / "children").read_text().split():
            with suppress(OSError):
                ticks += sum(int(f) for f in _stat_fields(int(child))[11:13])
    return ticks / os.sysconf("SC_CLK_TCK")


def broker_pid(up_pid: int) -> int | None:
    """The local broker (moto) that ``up`` runs as its child."""
    for task in Path(f"/proc/{up_pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with suppress(OSError):
                if b"moto" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
    return None


@dataclass(frozen=True)
class Storage:
    """Where the system under test keeps its data: env for ``up``, config for readers."""

    env: dict[str, str]
    config: StorageConfig


@asynccontextmanager
async def bench_storage(data_dir: Path, postgres: bool) -> AsyncIterator[Storage]:
    """SQLite files in ``data_dir``, or fresh schemas on PostgreSQL (dropped after)."""
    if not postgres:
        yield Storage({}, StorageConfig(data_dir=data_dir, pool_size=2))
        return
    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    env = {"EC_DATABASE_URL": POSTGRES_URL, "EC_SCHEMA_PREFIX": prefix}
    config = StorageConfig(
        data_dir=data_dir, database_url=POSTGRES_URL, schema_prefix=prefix, pool_size=2
    )
    try:
        yield Storage(env, config)
    finally:
        await drop_schemas(prefix)


async def drop_schemas(prefix: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%"
        )
        for row in rows:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')
    finally:
        await conn.close()


@dataclass(frozen=True)
class System:
    gateway_url: str
    broker_url: str
    pids: dict[str, int]  # the project's processes by role, and "broker" (moto)


def _did_not_start(what: str, log: Path, lines: int = 30) -> str:
    """Why ``what`` did not start: the end of its log, quoted here because the
    bench's data directory, the log's home, is removed as the bench exits."""
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join([f"{what} did not start; the end of its log:", *tail])


@asynccontextmanager
async def running_system(
    data_dir: Path,
    extra_env: dict[str, str],
    *,
    demo: bool = False,
    log_level: str = "WARNING",
    poll: float = 0.2,
    up_args: Sequence[str] = (),
) -> AsyncIterator[System]:
    """``ec-recommend up`` as a child process (its log in ``<data_dir>/up.log``),
    entered once ``/readyz`` answers 200 (checked every ``poll`` seconds)."""
    env = dict(os.environ, **BENCH_ENV, EC_LOG_LEVEL=log_level, **extra_env)
    with (data_dir / "up.log").open("wb") as log:
        child = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "ec_recommend.cli", "up", "--port", "0"],
            *([] if demo else ["--no-demo"]),
            *up_args,
            *["--data-dir", str(data_dir)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
    try:
        endpoints_file = data_dir / "endpoints.json"
        deadline = time.monotonic() + 120
        endpoints: dict[str, str] = {}
        while not endpoints:
            if child.returncode is not None or time.monotonic() > deadline:
                raise SystemExit(_did_not_start("ec-recommend up", data_dir / "up.log"))
            if endpoints_file.exists():
                with suppress(ValueError):
                    endpoints = json.loads(endpoints_file.read_text(encoding="utf-8"))
            await asyncio.sleep(poll)
        url = endpoints["gateway_url"]
        async with Client(url) as probe:
            while not await probe.ready():
                if time.monotonic() > deadline:
                    raise SystemExit("the gateway did not become ready")
                await asyncio.sleep(poll)
        moto = broker_pid(child.pid)
        pids = {"up": child.pid, **({"broker": moto} if moto else {})}
        yield System(url, endpoints["aws_endpoint_url"], pids)
    finally:
        await _stop(child)


async def _stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is None:
        child.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(child.wait(), 30)
    except TimeoutError:
        child.kill()
        await child.wait()


# ``--split``: the system as ``serve`` over two processes (one broker for both):
# the front's services (``--front``) and the back's (every other one). The
# front is an order's request path, so its calls between services (ReserveStock,
# ConfirmReservation, CommitStock) stay in one process; the back is the
# consumers with the user service their emails look addresses up in. Measured
# against the earlier default (gateway, user, product, cart: order in the back)
# it spent ~30 % less CPU per order (docs/performance.md). The cache's
# invalidation runs beside the gateway: without Redis its cache is in-process.
FRONT = ("gateway", "product", "cart", "order", "cache-invalidation")


def split_of(front: Sequence[str]) -> dict[str, list[str]]:
    """The services of each process: ``front`` (the gateway among them) and the rest."""
    every = dict.fromkeys(["gateway", "order", *SERVICES, *CONSUMERS])
    unknown = sorted(set(front) - set(every))
    if "gateway" not in front or unknown:
        raise SystemExit(f"--front needs the gateway and known services (unknown: {unknown})")
    return {"front": list(front), "back": [name for name in every if name not in front]}


async def _local_aws_env(aws: LocalAws) -> dict[str, str]:
    """The Cognito pool, the SNS/SQS topology and the SES sender on ``aws``; the
    variables that point ``serve`` at them (what ``up`` does in-process)."""
    from ec_recommend.platform.auth.provision import provision_user_pool
    from ec_recommend.platform.aws import open_aws_client
    from ec_recommend.platform.events.provision import provision
    from ec_recommend.platform.events.topology import load_topology

    pool = await provision_user_pool(aws)
    events = EventsConfig(enabled=True, endpoint_url=aws.endpoint_url, region=aws.region)
    await provision(events, load_topology())
    async with open_aws_client("ses", region=aws.region, endpoint_url=aws.endpoint_url) as ses:
        await ses.verify_email_identity(EmailAddress=NotificationConfig().sender)
    return {
        "EC_AWS_ENDPOINT_URL": aws.endpoint_url,
        "EC_AWS_REGION": aws.region,
        "EC_COGNITO_ENDPOINT_URL": aws.endpoint_url,
        "EC_COGNITO_REGION": aws.region,
        "EC_COGNITO_USER_POOL_ID": pool.user_pool_id,
        "EC_COGNITO_CLIENT_ID": pool.client_id,
        "EC_ALLOW_SELLER_SIGNUP": "1",
        "EC_COGNITO_AUTO_CONFIRM": "1",
    }


@asynccontextmanager
async def split_system(
    data_dir: Path, extra_env: dict[str, str], front: Sequence[str] = FRONT
) -> AsyncIterator[System]:
    """``ec-recommend serve`` in two processes (``split_of(front)``), each service
    on a fixed port the other process reaches through ``EC_ENDPOINTS_<SERVICE>``."""
    split = split_of(front)
    ports = {name: free_port() for names in split.values() for name in names if name in SERVICES}
    async with AsyncExitStack() as stack:
        child, aws = await start_moto()
        stack.push_async_callback(stop_moto, child)
        base = dict(
            os.environ,
            **BENCH_ENV,
            EC_LOG_LEVEL="WARNING",
            **extra_env,
            **await _local_aws_env(aws),
        )
        processes: dict[str, asyncio.subprocess.Process] = {}
        for role, names in split.items():
            env = dict(base)
            for name, port in ports.items():
                key = "PORT" if name in names else "ENDPOINTS"
                env[f"EC_{key}_{name.upper()}"] = (
                    str(port) if name in names else f"127.0.0.1:{port}"
                )
            with (data_dir / f"{role}.log").open("wb") as log:
                processes[role] = await asyncio.create_subprocess_exec(
                    *[sys.executable, "-m", "ec_recommend.cli", "serve", *names],
                    *["--data-dir", str(data_dir)],
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                    env=env,
                )
            stack.push_async_callback(_stop, processes[role])
        ready = {}
        for role, process in processes.items():
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            if not line:
                raise SystemExit(_did_not_start(f"serve {role}", data_dir / f"{role}.log"))
            ready[role] = json.loads(line)
        url = ready["front"]["gateway_url"]
        async with Client(url) as probe:
            deadline = time.monotonic() + 60
            while not await probe.ready():
                if time.monotonic() > deadline:
                    raise SystemExit("the gateway did not become ready")
                await asyncio.sleep(0.2)
        pids = {role: process.pid for role, process in processes.items()}
        yield System(url, aws.endpoint_url, {**pids, "broker": child.pid})


async def buy_until(client: Client, product_id: str, stop: float, latencies: list[float]) -> None:
    """One buyer's closed loop: create an order of one ``product_id`` and pay it
    with tok_visa until ``stop`` (perf_counter); each create+pay's seconds go to
    ``latencies``."""
    while time.perf_counter() < stop:
        started = time.perf_counter()
        order = await client.create_order([(product_id, 1)])
        await client.pay(order["id"], "tok_visa")
        latencies.append(time.perf_counter() - started)


async def _account(url: str, role: str, n: int) -> Client:
    client = Client(url, headers={"X-Forwarded-For": f"10.9.{n // 256}.{n % 256}"})
    email = f"bench-{role}-{uuid.uuid4().hex[:10]}@example.com"
    await client.signup(email, "Passw0rd-bench", display_name=f"{role} {n}", role=role)
    await client.login(email, "Passw0rd-bench")
    return client


class CpuMeter:
    """CPU seconds of each process of the system since the meter was made,
    and of the local PostgreSQL server's (``server``) when there is one."""

    def __init__(self, pids: dict[str, int], postmaster: int | None = None) -> None:
        self.pids = pids
        self.postmaster = postmaster
        self.start = self.read()

    def read(self) -> dict[str, float]:
        seconds = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        if self.postmaster is not None:
            seconds[DATABASE_SERVER] = postgres_cpu_seconds(self.postmaster)
        return seconds

    def spent(self) -> dict[str, float]:
        now = self.read()
        return {name: now[name] - self.start[name] for name in now}


def _per_order(calls: dict[str, dict[str, int]], orders: int) -> tuple[float, str]:
    """AWS calls per order (moto's own API left out) and the breakdown, largest first."""
    by_action = [
        (n / orders, f"{service}:{action}")
        for service, actions in calls.items()
        if service != MOTO_API
        for action, n in actions.items()
    ]
    by_action.sort(reverse=True)
    total = sum(n for n, _name in by_action)
    return total, ", ".join(f"{name} {n:.2f}" for n, name in by_action)


_OTHERS = ("broker", DATABASE_SERVER, LOAD_GENERATOR)  # on the machine, not the project's


def _ceiling_line(spent: dict[str, float], orders: int) -> str:
    """Orders/s this machine's cores allow at the CPU per order measured, and with
    the project's processes costing nothing: what the broker, the database
    server and the load generator leave (they share the cores in a bench)."""
    cores = os.cpu_count() or 1
    everything = sum(spent.values()) / orders
    others = sum(spent.get(name, 0.0) for name in _OTHERS) / orders
    zero_ours = f"{cores / others:.0f}" if others > 0 else "unbounded"
    return (
        f"{cores} cores: at most {cores / everything:.0f} orders/s at this CPU per order, "
        f"{zero_ours} if the project's processes cost nothing"
    )


def _relative_line(spent: dict[str, float]) -> str | None:
    """Every process's CPU against the load generator's: its work per order is
    fixed (two requests and their answers), so it slows down and speeds up
    with the machine, and this ratio moves with the system, not the machine."""
    generator = spent.get(LOAD_GENERATOR, 0.0)
    if generator <= 0:
        return None
    return (
        f"{sum(spent.values()) / generator:.1f}x the load generator's CPU "
        "(its work per order is fixed: this ratio follows the system, not the machine's speed)"
    )


def _cpu_line(spent: dict[str, float], orders: int) -> str:
    """ms per order of each process, and of the project's processes together."""
    ours = {name: seconds for name, seconds in spent.items() if name not in _OTHERS}
    parts = [f"{name} {seconds / orders * 1000:.1f}" for name, seconds in ours.items()]
    if len(ours) > 1:
        parts.append(f"together {sum(ours.values()) / orders * 1000:.1f}")
    parts.append(f"local broker {spent.get('broker', 0.0) / orders * 1000:.1f}")
    if DATABASE_SERVER in spent:
        parts.append(f"PostgreSQL server {spent[DATABASE_SERVER] / orders * 1000:.1f}")
    if LOAD_GENERATOR in spent:
        parts.append(f"load generator {spent[LOAD_GENERATOR] / orders * 1000:.1f}")
    return ", ".join(parts) + " ms"


async def bench_gateway(
    concurrency: int,
    seconds: float,
    *,
    postgres: bool,
    split: bool,
    drain_timeout: float,
    front: Sequence[str] = FRONT,
) -> None:
    system_of = partial(split_system, front=front) if split else running_system
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        async with (
            bench_storage(data_dir, postgres) as storage,
            system_of(data_dir, storage.env) as system,
            aiohttp.ClientSession() as session,
            # Opened before the run, so the drain after it is the system's own.
            quiescence(storage.config, system.broker_url) as handled_yet,
        ):
            url = system.gateway_url
            seller = await _account(url, "seller", 0)
            buyers = [await _account(url, "customer", n + 1) for n in range(concurrency)]
            product = await seller.create_product("Bench beans", 1200, 1_000_000)
            # Sign-ups and the product's events settle before the measured run.
            await handled_yet.settled(timeout=drain_timeout)
            latencies: list[float] = []
            stop = time.perf_counter() + seconds
            calls_before = await broker_report(session, system.broker_url)
            pids = {**system.pids, LOAD_GENERATOR: os.getpid()}
            cpu = CpuMeter(pids, postmaster_pid() if postgres else None)
            started = time.perf_counter()
            await asyncio.gather(*(buy_until(b, product["id"], stop, latencies) for b in buyers))
            buying = time.perf_counter() - started
            cpu_buying = cpu.spent()
            settled = await handled_yet.settled(timeout=drain_timeout)
            calls_after = settled.report
            handled = settled.drained_at - started
            cpu_all = cpu.spent()
            for client in [seller, *buyers]:
                await client.close()
    orders = max(len(latencies), 1)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    engine = "PostgreSQL" if postgres else "SQLite"
    shape = f"serve over two processes, front: {', '.join(front)}" if split else "up"
    print(
        f"Gateway ({shape}, {engine}): create + pay with {concurrency} concurrent buyers "
        f"for {seconds:.0f}s"
    )
    print(
        f"  {len(latencies) / buying:9.1f} orders/s while buying, "
        f"{len(latencies) / handled:.1f} orders/s with every event handled "
        f"(+{handled - buying:.1f}s)  p50 {statistics.median(latencies) * 1000:.0f} ms  "
        f"p99 {p99 * 1000:.0f} ms  ({len(latencies)} orders)"
    )
    print(f"  CPU per order, every event handled: {_cpu_line(cpu_all, orders)}")
    print(f"  CPU per order, while buying:        {_cpu_line(cpu_buying, orders)}")
    print(f"  ceiling, every event handled: {_ceiling_line(cpu_all, orders)}")
    relative = _relative_line(cpu_all)
    if relative is not None:
        print(f"  every process together, every event handled: {relative}")
    total, breakdown = _per_order(calls_between(calls_before, calls_after), orders)
    print(f"  broker calls per order: {total:.2f}  ({breakdown})")
    if calls_after.dead_letters() or calls_after.parked():
        print(
            f"  left in the broker: {calls_after.dead_letters()} dead-lettered, "
            f"{calls_after.parked()} parked (delayed) messages"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--gateway", action="store_true", help="also orders/s through HTTP")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--postgres", action="store_true", help=f"--gateway on PostgreSQL ({POSTGRES_URL})"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="--gateway with serve over two processes (the request path | the rest); "
        "implies --postgres",
    )
    parser.add_argument(
        "--front",
        default=",".join(FRONT),
        help="--split: the services of the process with the gateway, comma-separated "
        "(default %(default)s); the other process hosts the rest",
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=120.0, help="longest wait for events to settle"
    )
    parser.add_argument("--no-dataloader", action="store_true", help="skip the DataLoader bench")
    args = parser.parse_args()
    if not args.no_dataloader:
        asyncio.run(bench_dataloader(args.items, args.rounds))
    if args.gateway:
        asyncio.run(
            bench_gateway(
                args.concurrency,
                args.seconds,
                postgres=args.postgres or args.split,
                split=args.split,
                drain_timeout=args.drain_timeout,
                front=[name.strip() for name in args.front.split(",") if name.strip()],
            )
        )


if __name__ == "__main__":
    sys.exit(main())
