#!/usr/bin/env python
"""WebSocket push: 1,000 clients held by one gateway process, messages/s delivered.

The gateway (``create_app`` with the in-process fan-out, anonymous clients
following one ``product:<id>`` topic) runs in a child process; the clients
run here. Events are published inside the gateway in bursts of ``--burst``
(below the per-connection send-queue bound, so a burst never makes a client
"slow"); the next burst goes once every client has all frames of the last.
Reported: connections held at the end, slow-client disconnects, frames/s.

Baseline, same run, same clients: a bare aiohttp WebSocket server that sends
each frame to every socket in a loop (no hub, no auth, no queues, no limits).
The ratio says what the gateway's push path costs against that.

Usage: .venv/bin/python scripts/bench/ws.py [--clients 1000] [--events 300] [--burst 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

PRODUCT_ID = str(uuid.UUID(int=42))
TOPIC = f"product:{PRODUCT_ID}"


def raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


# -- the servers (child process) ---------------------------------------------


def _gateway_app() -> web.Application:
    from contextlib import asynccontextmanager as cm

    from ec_recommend._gen.ecommerce import events as pb
    from ec_recommend.config import Config, GatewayConfig, RealtimeConfig
    from ec_recommend.edge.gateway.app import GatewaySetup, create_app
    from ec_recommend.edge.realtime.handler import REALTIME
    from ec_recommend.platform import errors
    from ec_recommend.platform.events.envelope import new_event

    class NoTokens:
        async def verify(self, token: str) -> Any:
            raise errors.Unauthenticated("no tokens in this bench")

    @cm
    async def verifier() -> AsyncIterator[NoTokens]:
        yield NoTokens()

    config = Config(
        gateway=GatewayConfig(rate_limit_anonymous=10_000_000),
        realtime=RealtimeConfig(backend="local", connections=20_000, idle_timeout=600),
    )
    app = create_app(GatewaySetup(config=config, verifier=verifier))

    async def publish(request: web.Request) -> web.Response:
        fanout = request.app[REALTIME].fanout
        assert fanout is not None
        for i in range(int(request.query["n"])):
            update = pb.ProductUpdated(product_id=PRODUCT_ID, stock_quantity=i, status="ACTIVE")
            await fanout.publish(new_event("product.updated", update, source="bench"))
        return web.json_response({"held": len(request.app[REALTIME].hub.connections)})

    app.router.add_post("/bench/publish", publish)
    return app


def _bare_app() -> web.Application:
    sockets: set[web.WebSocketResponse] = set()
    app = web.Application()

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        sockets.add(socket)
        try:
            async for _ in socket:
                await socket.send_str(json.dumps({"type": "subscribed", "topic": TOPIC}))
        finally:
            sockets.discard(socket)
        return socket

    async def publish(request: web.Request) -> web.Response:
        for i in range(int(request.query["n"])):
            frame = json.dumps({"type": "product.updated", "event_id": str(uuid.uuid4()), "i": i})
            for socket in list(sockets):
                await socket.send_str(frame)
        return web.json_response({"held": len(sockets)})

    app.router.add_get("/api/v1/ws", ws)
    app.router.add_post("/bench/publish", publish)
    return app


def serve(kind: str, port_file: Path) -> None:
    raise_open_files(65536)

    async def main() -> None:
        app = _gateway_app() if kind == "gateway" else _bare_app()
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        await asyncio.to_thread(port_file.write_text, str(runner.addresses[0][1]))
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the clients (this process) ----------------------------------------------


@asynccontextmanager
async def server(kind: str) -> AsyncIterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", kind, str(port_file)
        )
        try:
            deadline = time.monotonic() + 30
            while not (port := await asyncio.to_thread(_read_port, port_file)):
                if child.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} server did not start")
                await asyncio.sleep(0.05)
            yield f"http://127.0.0.1:{port}", child.pid
        finally:
            child.terminate()
            await child.wait()


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _read_port(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def run(kind: str, clients: int, events: int, burst: int) -> dict[str, float]:
    async with server(kind) as (url, pid), AsyncExitStack() as stack:
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        )
        received = [0] * clients
        counts = {"total": 0, "target": 0}
        progress = asyncio.Event()
        sockets: list[aiohttp.ClientWebSocketResponse] = []

        async def connect(i: int) -> None:
            ws = await session.ws_connect(f"{url}/api/v1/ws", heartbeat=None)
            await ws.send_json({"type": "subscribe", "topic": TOPIC})
            ack = await ws.receive_json(timeout=30)
            assert ack["type"] == "subscribed", ack
            sockets.append(ws)

        idle_rss = rss_mib(pid)
        started = time.perf_counter()
        for start in range(0, clients, 100):  # connect in waves: the accept backlog
            await asyncio.gather(*(connect(i) for i in range(start, min(clients, start + 100))))
        connect_seconds = time.perf_counter() - started
        held_rss = rss_mib(pid)

        async def read(i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    received[i] += 1
                    counts["total"] += 1
                    if counts["total"] >= counts["target"]:
                        progress.set()
            progress.set()  # a closed socket: let the publisher notice

        readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]
        publisher = await stack.enter_async_context(aiohttp.ClientSession())
        started = time.perf_counter()
        sent = 0
        held = 0
        while sent < events:
            n = min(burst, events - sent)
            async with publisher.post(f"{url}/bench/publish", params={"n": n}) as response:
                held = (await response.json())["held"]
            sent += n
            counts["target"] = sent * clients
            while counts["total"] < counts["target"] and all(not ws.closed for ws in sockets):
                progress.clear()
                await progress.wait()
        elapsed = time.perf_counter() - started
        busy_rss = rss_mib(pid)
        still_open = sum(not ws.closed for ws in sockets)
        for task in readers:
            task.cancel()
        for ws in sockets:
            with suppress(Exception):
                await ws.close()
        return {
            "connect_s": connect_seconds,
            "held": held,
            "open": still_open,
            "frames": sum(received),
            "frames_per_s": sum(received) / elapsed,
            "kib_per_connection": (held_rss - idle_rss) * 1024 / clients,
            "rss_after_mib": busy_rss,
        }


async def bench(clients: int, events: int, burst: int) -> None:
    raise_open_files(4 * clients + 1024)
    results = {kind: await run(kind, clients, events, burst) for kind in ("bare", "gateway")}
    for kind, r in results.items():
        print(
            f"{kind:8s} clients={clients} connected in {r['connect_s']:.1f}s, held={r['held']:.0f},"
            f" open at end={r['open']:.0f}, frames={r['frames']:.0f},"
            f" delivered {r['frames_per_s']:,.0f} frames/s;"
            f" server memory {r['kib_per_connection']:.0f} KiB per connection,"
            f" RSS {r['rss_after_mib']:.0f} MiB after the run"
        )
    ratio = results["gateway"]["frames_per_s"] / results["bare"]["frames_per_s"]
    print(f"gateway / bare broadcast: {ratio:.2f}x")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(bench(args.clients, args.events, args.burst))


if __name__ == "__main__":
    main()
