#!/usr/bin/env python
"""``ec-recommend up``: seconds to ready, where they go, and the memory of its tree.

Starts ``ec-recommend up --port 0 --data-dir <tmp>`` (with the demo data, as a
user would; ``--no-demo`` without) ``--starts`` times, each in a fresh data
directory, and measures the seconds from launch to ``/readyz`` 200 (polled
every 50 ms). The time is broken down from ``up``'s own INFO log (moto
listening, Cognito pool, topology, each service's migrations and server,
consumers, demo data, gateway listening); the median of each step over the
starts is printed. Steps that run side by side (the services beside the
provisioning, the gateway beside the consumers and demo data) show the
time since whichever line came before. The last start then takes a checkout load: ``--concurrency``
buyers create and pay orders for ``--seconds`` (scripts/bench/checkout.py's
loop), and the bench waits until every event is handled. RSS (and PSS, which
counts shared pages once) of ``up``'s process, each child (moto, gateway
workers) and the tree are printed at ready and after the run, against the
goals: ready <= 5 s, tree <= 300 MB after a 60 s run.
Usage: .venv/bin/python scripts/bench/startup.py [--starts 3] [--seconds 60]
       [--concurrency 8] [--no-demo] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from checkout import _account, bench_storage, buy_until, running_system

from ec_recommend.runtime.quiescence import wait_until_handled

READY_GOAL_S = 5.0
RSS_GOAL_MB = 300.0
POLL_S = 0.05

# up's INFO lines that close a step of the start, and the step's name.
_STEPS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^local AWS \(moto\) listening"), "moto listening (imports, child start)"),
    (re.compile(r"^Cognito user pool"), "Cognito pool"),
    (re.compile(r"^SNS/SQS topology"), "demo accounts, SES sender, SNS/SQS topology"),
    (re.compile(r"^serving (\w+) on"), "service {0} (migrations, server)"),
    (re.compile(r"^event consumers running"), "consumers"),
    (re.compile(r"^demo data:"), "demo data"),
    (re.compile(r"^gateway listening"), "gateway listening"),
]


@dataclass(frozen=True)
class Start:
    ready_s: float
    steps: list[tuple[str, float]]  # step name, seconds since the step before (launch first)
    rss: dict[str, tuple[float, float]]  # process -> (RSS MB, PSS MB) at ready


def _log_steps(log: Path, launched: float) -> list[tuple[str, float]]:
    """Each step the log shows, with the seconds it took after the step before."""
    steps: list[tuple[str, float]] = []
    previous = launched
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        with suppress(ValueError):
            record = json.loads(line)
            message = str(record.get("message", ""))
            for pattern, name in _STEPS:
                match = pattern.match(message)
                if match is None:
                    continue
                at = datetime.fromisoformat(record["timestamp"]).timestamp()
                steps.append((name.format(*match.groups()), at - previous))
                previous = at
                break
    return steps


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with suppress(OSError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _role(pid: int, up_pid: int) -> str:
    if pid == up_pid:
        return "up"
    with suppress(OSError):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"moto" in cmdline:
            return f"moto ({pid})"
        if b"multiprocessing" in cmdline or b"worker" in cmdline:
            return f"gateway worker ({pid})"
    return f"child ({pid})"


def _memory_mb(pid: int) -> tuple[float, float]:
    """RSS and PSS of one process in MB (PSS shares each shared page among its users)."""
    rss = pss = 0.0
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    return rss, pss


def tree_memory(up_pid: int) -> dict[str, tuple[float, float]]:
    """RSS and PSS (MB) of ``up`` and of every process below it."""
    pids, todo = [], [up_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += _children(pid)
    return {_role(pid, up_pid): _memory_mb(pid) for pid in pids}


def _memory_lines(title: str, memory: dict[str, tuple[float, float]]) -> list[str]:
    rss = sum(r for r, _ in memory.values())
    pss = sum(p for _, p in memory.values())
    parts = ", ".join(f"{name} {r:.0f}" for name, (r, _) in memory.items())
    return [
        f"  {title}: tree RSS {rss:.0f} MB ({parts}); PSS {pss:.0f} MB; "
        f"x{rss / RSS_GOAL_MB:.2f} of the {RSS_GOAL_MB:.0f} MB goal"
    ]


async def _run_load(
    data_dir: Path, gateway_url: str, broker_url: str, concurrency: int, seconds: float
) -> int:
    """Buyers in a closed loop for ``seconds``, then every event handled; orders made."""
    async with bench_storage(data_dir, postgres=False) as storage:
        seller = await _account(gateway_url, "seller", 0)
        buyers = [await _account(gateway_url, "customer", n + 1) for n in range(concurrency)]
        product = await seller.create_product("Bench beans", 1200, 1_000_000)
        latencies: list[float] = []
        stop = time.perf_counter() + seconds
        await asyncio.gather(*(buy_until(b, product["id"], stop, latencies) for b in buyers))
        await wait_until_handled(storage.config, broker_url, timeout=120)
        for client in [seller, *buyers]:
            await client.close()
    return len(latencies)


async def one_start(
    demo: bool, workers: int, load: tuple[int, float] | None
) -> tuple[Start, dict[str, tuple[float, float]] | None, int]:
    extra = {"EC_LOG_FORMAT": "json"}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        launched_wall, launched = time.time(), time.perf_counter()
        async with running_system(
            data_dir,
            extra,
            demo=demo,
            log_level="INFO",
            poll=POLL_S,
            up_args=["--workers", str(workers)] if workers > 1 else [],
        ) as system:
            ready_s = time.perf_counter() - launched
            start = Start(
                ready_s,
                _log_steps(data_dir / "up.log", launched_wall),
                tree_memory(system.pids["up"]),
            )
            after, orders = None, 0
            if load is not None:
                concurrency, seconds = load
                orders = await _run_load(
                    data_dir, system.gateway_url, system.broker_url, concurrency, seconds
                )
                after = tree_memory(system.pids["up"])
    return start, after, orders


def _print_steps(starts: list[Start]) -> None:
    names = list(dict.fromkeys(name for start in starts for name, _ in start.steps))
    print("  where the time goes (median over the starts, seconds after the step before):")
    for name in names:
        took = [s for start in starts for n, s in start.steps if n == name]
        print(f"    {statistics.median(took):6.2f}  {name}")


async def bench(starts: int, demo: bool, workers: int, concurrency: int, seconds: float) -> None:
    results: list[Start] = []
    after, orders = None, 0
    for n in range(starts):
        load = (concurrency, seconds) if n == starts - 1 and seconds > 0 else None
        start, run_after, run_orders = await one_start(demo, workers, load)
        results.append(start)
        if run_after is not None:
            after, orders = run_after, run_orders
        print(f"  start {n + 1}: ready in {start.ready_s:.2f} s", flush=True)
    ready = statistics.median(s.ready_s for s in results)
    print(
        f"up{' --workers ' + str(workers) if workers > 1 else ''} "
        f"({'demo data' if demo else 'no demo'}): ready in {ready:.2f} s median of {starts} "
        f"(min {min(s.ready_s for s in results):.2f}, max {max(s.ready_s for s in results):.2f}); "
        f"x{ready / READY_GOAL_S:.2f} of the {READY_GOAL_S:.0f} s goal"
    )
    _print_steps(results)
    for line in _memory_lines("at ready (last start)", results[-1].rss):
        print(line)
    if after is not None:
        title = f"after {seconds:.0f} s of checkout by {concurrency} buyers ({orders} orders)"
        for line in _memory_lines(title, after):
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3, help="starts to take the median of")
    parser.add_argument("--seconds", type=float, default=60.0, help="checkout run (0: none)")
    parser.add_argument("--concurrency", type=int, default=8, help="buyers in the run")
    parser.add_argument("--no-demo", action="store_true", help="up --no-demo")
    parser.add_argument("--workers", type=int, default=1, help="gateway processes")
    args = parser.parse_args()
    asyncio.run(bench(args.starts, not args.no_demo, args.workers, args.concurrency, args.seconds))


if __name__ == "__main__":
    sys.exit(main())
