#!/usr/bin/env python
"""GET /api/v1/products/{id}: the full gateway vs a bare aiohttp handler.

A server child process (uvloop) hosts the user and product services, the
gateway in front of them (RS256 token verified against a JWKS, identity
resolution, rate limiting, routing, schema, transcoding, gRPC call) and, on
another port, a bare aiohttp handler returning the same JSON bytes. The
gateway runs twice: "uncached" (no product events, so no read cache: every
GET calls ProductService) and "cached" (the in-process product cache, as
``up`` runs it). This process is the load generator: the same aiohttp
client, concurrency and duration against each target, in alternating
rounds of the same run. Prints requests/s, p50 and p99 latency of each and
the ratios against bare.

"activity" measures, in this process, the request-path CPU of recording one
product view (``ActivitySender.product_view``), the figure the issue bounds.

Two more server children run the same gateway with the OpenTelemetry SDK as
``ec-recommend serve`` installs it: "ids" without an OTLP endpoint (spans get
ids for the logs but record nothing), "exported" with one (spans recorded and
batched over OTLP/HTTP to a stand-in collector in this process). "gateway"
has no SDK at all (no-op spans).

"cached xN" (``--workers N``) is the cached gateway served by N processes on
one port: this one and N-1 gateway worker processes (``up --workers N``).

Usage: .venv/bin/python scripts/bench/gateway.py [--seconds 12] [--concurrency 32] [--no-tracing]
                                        [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

ISSUER = "https://bench.example.com/pool"
CLIENT_ID = "bench-client"


# -- server child -------------------------------------------------------------


def _signing_material() -> tuple[dict[str, Any], dict[str, Any]]:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jose import jwk

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = jwk.RSAKey(key, "RS256").to_dict()
    public = jwk.RSAKey(key.public_key(), "RS256").to_dict()
    kid = "bench-key"
    private.update(kid=kid)
    public.update(kid=kid, use="sig")
    return private, {"keys": [public]}


def _token(private: dict[str, Any]) -> str:
    from jose import jwt

    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "email": "bench@example.com",
        "cognito:groups": ["customer"],
        "token_use": "id",
        "aud": CLIENT_ID,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 3600,
    }
    return str(jwt.encode(claims, private, algorithm="RS256", headers={"kid": private["kid"]}))


def bench_worker_setup(config: Any, services: Any) -> Any:
    """A gateway worker's setup (imported by the worker as ``gateway``): the
    bench's JWKS from ``config.auth``, the product cache on."""
    from ec_recommend.edge.gateway.app import GatewaySetup
    from ec_recommend.platform.auth.verifier import TokenVerifier

    auth = config.auth
    return GatewaySetup(
        config=config,
        verifier=lambda: TokenVerifier(
            jwks_url=auth.jwks_url, issuer=auth.issuer, client_id=auth.client_id
        ),
        services=tuple(services),
        product_cache=True,
    )


@asynccontextmanager
async def _gateway_workers(
    config: Any, bare_url: str, hosted: Any, workers: int
) -> AsyncIterator[str | None]:
    """The cached gateway in this process and ``workers - 1`` worker processes."""
    if workers <= 1:
        yield None
        return
    from ec_recommend.edge.gateway.app import create_app, serving
    from ec_recommend.edge.gateway.keys import PRODUCT_CACHE
    from ec_recommend.edge.gateway.workers import GatewayWorkers, worker_spec

    config = replace(
        config,
        auth=replace(
            config.auth, jwks_url=f"{bare_url}/jwks.json", issuer=ISSUER, client_id=CLIENT_ID
        ),
        cache=replace(config.cache, ttl=3600.0),
        log_level="WARNING",  # as this process, which configures no logging (no access log)
    )
    services = ("user", "product")
    app = create_app(replace(bench_worker_setup(config, services), clients=hosted.clients))
    async with serving(app, "127.0.0.1", 0, reuse_port=True) as url:
        spec = worker_spec(
            config,
            port=int(url.rsplit(":", 1)[1]),
            endpoints=hosted.endpoints(),
            services=services,
            setup="gateway:bench_worker_setup",
            traced=False,  # as this process: no OpenTelemetry SDK
        )
        async with GatewayWorkers(spec, workers - 1, app[PRODUCT_CACHE]):
            yield url


async def serve(data_dir: Path, workers: int) -> None:
    from aiohttp import web

    from ec_recommend._gen.ecommerce import common as pb_common
    from ec_recommend._gen.ecommerce import product as pb
    from ec_recommend.config import Config, GatewayConfig, StorageConfig
    from ec_recommend.edge.gateway.app import GatewaySetup, create_app, serving
    from ec_recommend.edge.gateway.transcode import message_to_json
    from ec_recommend.platform.auth.verifier import TokenVerifier
    from ec_recommend.runtime.host import host_services

    try:
        from ec_recommend.platform import heap
    except ImportError:  # a revision from before the heap was settled once started
        heap = None

    private, jwks = _signing_material()
    product_json = b""

    async def bare_product(request: web.Request) -> web.Response:
        return web.Response(body=product_json, content_type="application/json")

    async def jwks_handler(request: web.Request) -> web.Response:
        return web.json_response(jwks)

    bare = web.Application()
    bare.router.add_get("/api/v1/products/{product_id}", bare_product)
    bare.router.add_get("/jwks.json", jwks_handler)

    config = Config(
        storage=StorageConfig(data_dir=data_dir),
        gateway=replace(
            GatewayConfig(), rate_limit_authenticated=10**9, rate_limit_anonymous=10**9
        ),
    )
    async with (
        _plain_serving(bare) as bare_url,
        host_services(config, ["user", "product"]) as hosted,
    ):
        stub = hosted.clients.stub(pb.ProductServiceStub, "product")
        product = await stub.create_product(
            pb.CreateProductRequest(
                seller_id="bench-seller",
                name="ワイヤレスイヤホン Pro",
                description="ノイズキャンセリング対応のワイヤレスイヤホン",
                base_price=pb_common.Money(amount=19800, currency="JPY"),
                sale_price=pb_common.Money(amount=16800, currency="JPY"),
                stock_quantity=40,
                images=[pb.ProductImage(url="https://images.example.com/a.jpg", alt_text="a")],
            )
        )
        import orjson

        product_json = orjson.dumps(message_to_json(product))
        app = create_app(
            GatewaySetup(
                config=config,
                verifier=lambda: TokenVerifier(
                    jwks_url=f"{bare_url}/jwks.json", issuer=ISSUER, client_id=CLIENT_ID
                ),
                clients=hosted.clients,
                services=("user", "product"),
            )
        )
        cached_app = create_app(
            GatewaySetup(
                config=config,
                verifier=lambda: TokenVerifier(
                    jwks_url=f"{bare_url}/jwks.json", issuer=ISSUER, client_id=CLIENT_ID
                ),
                clients=hosted.clients,
                services=("user", "product"),
            )
        )
        cached_app.on_startup.append(_with_read_cache)
        async with (
            serving(app, "127.0.0.1", 0) as gateway_url,
            serving(cached_app, "127.0.0.1", 0) as cached_url,
            _gateway_workers(config, bare_url, hosted, workers) as workers_url,
        ):
            if heap is not None:
                heap.settle()  # as `up` and `serve` do once started
            print(
                json.dumps(
                    {
                        "gateway": f"{gateway_url}/api/v1/products/{product.id}",
                        "cached": f"{cached_url}/api/v1/products/{product.id}",
                        "workers": workers_url and f"{workers_url}/api/v1/products/{product.id}",
                        "bare": f"{bare_url}/api/v1/products/{product.id}",
                        "token": _token(private),
                    }
                ),
                flush=True,
            )
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def _with_read_cache(app: Any) -> None:
    """The in-process product cache ``up`` runs (there product events invalidate
    it; here nothing changes the product, so a long TTL keeps every GET a hit)."""
    from ec_recommend.edge.gateway.keys import PRODUCT_CACHE
    from ec_recommend.platform.cache import LocalProductCache

    app[PRODUCT_CACHE] = LocalProductCache(ttl=3600.0, max_entries=1000)


def activity_cost(views: int = 20_000) -> tuple[float, float]:
    """Request-path CPU of one product view, and of encoding it for SQS (microseconds).

    The sender is not started, so nothing is sent: ``product_view`` is the
    part a request pays; the encoding is what the sender pays later.
    """
    from ec_recommend.config import EventsConfig
    from ec_recommend.platform.events.activity import ActivitySender

    sender = ActivitySender(EventsConfig(), capacity=views + 1)
    user = str(uuid.uuid4())
    product = str(uuid.uuid4())
    started = time.process_time()
    for _ in range(views):
        sender.product_view(product_id=product, user_id=user)
    recorded = (time.process_time() - started) / views * 1e6
    encode_all = getattr(sender, "encode_pending", None)
    if encode_all is None:
        return recorded, 0.0  # encoded while recording
    started = time.process_time()
    encode_all()
    return recorded, (time.process_time() - started) / views * 1e6


# -- load generator ----------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    cpu: float = 0.0  # seconds of the server child's CPU (its workers' included)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request(self) -> float:
        """Microseconds of server CPU per request (all targets share the child, one at a time)."""
        return self.cpu / max(1, self.requests) * 1e6

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        return (
            f"{self.name:<8} {self.rate:>9.0f} req/s   p50 {self.percentile(0.5):6.2f} ms"
            f"   p99 {self.percentile(0.99):6.2f} ms"
            f"   server CPU {self.cpu_per_request:5.0f} us/req   errors {self.errors}"
        )


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """CPU seconds of ``pid`` and of its live children (gateway workers)."""
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                pids += [int(child) for child in children.read().split()]
    for one in pids:
        with contextlib.suppress(OSError), open(f"/proc/{one}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


async def load(
    name: str,
    url: str,
    headers: dict[str, str],
    seconds: float,
    concurrency: int,
    server_pid: int | None = None,
) -> Result:
    connector = aiohttp.TCPConnector(limit=concurrency)
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(until: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < until:
                started = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                if record:
                    latencies.append(time.perf_counter() - started)

        warm = time.perf_counter() + min(2.0, seconds / 4)
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        started = time.perf_counter()
        cpu = _cpu_of(server_pid) if server_pid else 0.0
        until = started + seconds
        await asyncio.gather(*(worker(until, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = _cpu_of(server_pid) - cpu if server_pid else 0.0
    return Result(name, len(latencies), elapsed, latencies, errors, cpu)


def _merged(results: list[Result]) -> Result:
    return Result(
        results[0].name,
        sum(r.requests for r in results),
        sum(r.seconds for r in results),
        [latency for r in results for latency in r.latencies],
        sum(r.errors for r in results),
        sum(r.cpu for r in results),
    )


@asynccontextmanager
async def _plain_serving(app: Any) -> AsyncIterator[str]:
    """The baseline as aiohttp serves it out of the box (no gateway request handler)."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def _server(data_dir: str, *options: str) -> AsyncIterator[dict[str, Any]]:
    """A server child (``--serve``) until the block ends; yields its URLs and token."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        data_dir,
        *options,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        ready: dict[str, Any] = json.loads(await child.stdout.readline())
        yield {**ready, "pid": child.pid}
    finally:
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 30)


@asynccontextmanager
async def _span_sink() -> AsyncIterator[tuple[str, list[int]]]:
    """A stand-in OTLP/HTTP collector that accepts and counts trace exports."""
    from aiohttp import web

    received: list[int] = []

    async def traces(request: web.Request) -> web.Response:
        received.append(len(await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", received
    finally:
        await runner.cleanup()


async def _rounds(
    targets: list[tuple[str, str, dict[str, str], int]], seconds: float, concurrency: int
) -> list[Result]:
    """Each target (name, url, headers, server pid) in 3 alternating rounds, so
    a load spike on a shared machine hits all of them alike."""
    measured: dict[str, list[Result]] = {name: [] for name, *_ in targets}
    for _ in range(3):
        for name, url, headers, pid in targets:
            measured[name].append(await load(name, url, headers, seconds / 3, concurrency, pid))
    return [_merged(measured[name]) for name, *_ in targets]


def _ratio(result: Result, base: Result) -> str:
    return (
        f"{result.name}/{base.name}: throughput x{result.rate / base.rate:.2f}, "
        f"p50 x{result.percentile(0.5) / base.percentile(0.5):.1f}, "
        f"p99 x{result.percentile(0.99) / base.percentile(0.99):.1f}, "
        f"server CPU/request x{result.cpu_per_request / base.cpu_per_request:.2f}"
    )


async def run(seconds: float, concurrency: int, tracing: bool, workers: int) -> None:
    recorded, encoded = activity_cost()
    with (
        tempfile.TemporaryDirectory() as plain_dir,
        tempfile.TemporaryDirectory() as tracing_dir,
        tempfile.TemporaryDirectory() as sdk_dir,
        tempfile.TemporaryDirectory() as traced_dir,
    ):
        async with _server(plain_dir, "--workers", str(workers)) as ready:
            auth = {"Authorization": f"Bearer {ready['token']}"}
            async with aiohttp.ClientSession() as session:
                async with session.get(ready["bare"]) as response:
                    via_bare = await response.json()
                targets = [t for t in ("gateway", "cached", "workers") if ready.get(t)]
                for target in targets:
                    async with session.get(ready[target], headers=auth) as response:
                        assert await response.json() == via_bare, f"{target} differs from bare"
            names = {"gateway": "uncached", "cached": "cached", "workers": f"cached x{workers}"}
            bare, *measured = await _rounds(
                [("bare", ready["bare"], auth, ready["pid"])]
                + [(names[t], ready[t], auth, ready["pid"]) for t in targets],
                seconds,
                concurrency,
            )
        print(
            f"GET /api/v1/products/{{id}}, {concurrency} concurrent clients, "
            f"{seconds:.0f}s each in 3 alternating rounds"
        )
        for result in (bare, *measured):
            print(result.line())
        for result in measured:
            print(_ratio(result, bare))
        print(
            f"activity: product_view {recorded:.1f} us of request-path CPU, "
            f"encoding by the sender {encoded:.1f} us"
        )
        if not tracing:
            return
        async with (
            _span_sink() as (sink_url, exports),
            _server(tracing_dir) as plain,
            _server(sdk_dir, "--sdk") as sdk_only,
            _server(traced_dir, "--otlp", sink_url) as traced,
        ):
            baseline, ids, exported = await _rounds(
                [
                    (
                        "gateway",
                        plain["gateway"],
                        {"Authorization": f"Bearer {plain['token']}"},
                        plain["pid"],
                    ),
                    (
                        "ids",
                        sdk_only["gateway"],
                        {"Authorization": f"Bearer {sdk_only['token']}"},
                        sdk_only["pid"],
                    ),
                    (
                        "exported",
                        traced["gateway"],
                        {"Authorization": f"Bearer {traced['token']}"},
                        traced["pid"],
                    ),
                ],
                seconds,
                concurrency,
            )
    print("tracing (uncached), 3 alternating rounds each:")
    for result in (baseline, ids, exported):
        print(result.line())
    print(
        f"ids (SDK, no endpoint)/no SDK: throughput x{ids.rate / baseline.rate:.2f}, "
        f"p50 x{ids.percentile(0.5) / baseline.percentile(0.5):.2f}, "
        f"p99 x{ids.percentile(0.99) / baseline.percentile(0.99):.2f}"
    )
    print(
        f"tracing export on/off (no SDK): throughput x{exported.rate / baseline.rate:.2f}, "
        f"p50 x{exported.percentile(0.5) / baseline.percentile(0.5):.2f}, "
        f"p99 x{exported.percentile(0.99) / baseline.percentile(0.99):.2f} "
        f"({len(exports)} OTLP exports, {sum(exports) / 1e6:.1f} MB received)"
    )


@contextmanager
def _tracing(sdk: bool, otlp: str | None) -> Iterator[None]:
    """In the server child: no SDK (spans are no-ops), the SDK without export
    (what ``ec-recommend serve`` runs without an endpoint), or export to ``otlp``."""
    if not sdk and otlp is None:
        yield
        return
    from ec_recommend.config import TelemetryConfig
    from ec_recommend.platform.telemetry.export import tracing

    with tracing(TelemetryConfig(otlp_endpoint=otlp), "bench-gateway"):
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--no-tracing", action="store_true", help="skip the tracing variants (shorter)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also measure the cached gateway served by N processes (SO_REUSEPORT)",
    )
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--sdk", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--otlp", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        with _tracing(args.sdk, args.otlp):
            uvloop.run(serve(Path(args.serve), args.workers))
    else:
        uvloop.run(run(args.seconds, args.concurrency, not args.no_tracing, args.workers))


if __name__ == "__main__":
    main()
