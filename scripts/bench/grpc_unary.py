#!/usr/bin/env python
"""GetProduct throughput: our gRPC stack vs bare grpcio aio, same run.

Each variant runs its server in a child process (so server and client do not
share one interpreter) and is driven by the same closed-loop load: N
concurrent callers for a fixed time. Variants:

  bare   grpcio aio server + grpcio aio client (asyncio), the same betterproto2
         messages, the reply served from memory
  ours   RpcServer with every server policy as host_services installs them
         (health, drain, call context, telemetry middleware, allow-list,
         error translation) + a ClientFactory stub with every mesh policy of
         mesh.yaml (deadline and budget, retry bookkeeping, circuit breaker,
         balancer, pooled channels, metrics, tracing), plain; uvloop, as
         services run; the same message from memory; over the default
         transport, grpcio (platform/rpc/transports.py)
  mtls   ours under STRICT mTLS with development certificates
  grpclib, mtls-grpclib
         ours and mtls over the grpclib transport (HTTP/2 in Python), the
         transport before grpcio, for comparison
  full   ours with the real ProductService reading SQLite (host_services)

and, in this process (no child), the cost per call of a service hosted in
the same process, one caller at a time (CPU of both sides in one loop):

  local     the client calls the server in process (platform/rpc/local.py)
  loopback  the same server and client over loopback gRPC (EC_RPC_IN_PROCESS=0)
  local-traced
            local under the tracer provider ``up`` installs without an exporter
            (spans carry ids, record nothing), each call inside a caller's span
            as a gateway request makes it; run last (a provider stays installed)

Prints requests/s, p50/p99 latency and CPU per call (client process and
server process, from /proc) of each, the ratios ours/bare and mtls/ours in
throughput and in CPU per call (each taken within a round, the median over
--rounds rotated rounds, with their range), and local vs loopback in µs per
call. On a
shared machine throughput follows the neighbours' load (and grpcio's
C-core threads get a bigger share of a busy machine than one Python
thread); CPU per call is the steadier figure.
Usage: .venv/bin/python scripts/bench/grpc_unary.py [--seconds 5] [--concurrency 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from functools import partial

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb

METHOD = "/ecommerce.product.ProductService/GetProduct"
PRODUCT = pb.Product(
    id="9b2f3c1e-5d2a-4f7e-8a61-2f0c4b7d9e10",
    seller_id="seller-demo",
    name="ワイヤレスイヤホン Pro",
    description="ノイズキャンセリング対応のワイヤレスイヤホン",
    base_price=pb_common.Money(amount=19800, currency="JPY"),
    sale_price=pb_common.Money(amount=16800, currency="JPY"),
    stock_quantity=40,
    status="active",
    images=[pb.ProductImage(url="https://images.example.com/a.jpg", alt_text="front")],
)


# ---------------------------------------------------------------- servers


def settle_heap() -> None:
    """What a service process does once ready (gc.freeze, fewer young
    collections); done in every server child, bare included, so the ratios
    compare the request paths and not the collectors' settings."""
    try:
        from ec_recommend.platform.heap import settle
    except ImportError:  # a revision from before platform/heap.py
        return
    settle()


async def serve_bare(port: int) -> None:
    import grpc

    payload = bytes(PRODUCT)

    async def get_product(request: bytes, context: object) -> bytes:
        pb.GetProductRequest.parse(request)
        return payload

    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "ecommerce.product.ProductService",
        {"GetProduct": grpc.unary_unary_rpc_method_handler(get_product)},
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    settle_heap()
    print("ready", flush=True)
    await server.wait_for_termination()


class MemoryProducts(pb.ProductServiceBase):
    async def get_product(self, message: pb.GetProductRequest) -> pb.Product:
        return PRODUCT


CALL_KEY = bytes(range(32))  # the call-identity key the bench's processes share


def _signer() -> object:
    from ec_recommend.platform.security.call_token import CallSigner

    return CallSigner(CALL_KEY)


def policed_server(port: int, tls: object = None, transport: str | None = None) -> object:
    """RpcServer for MemoryProducts with the middlewares host_services installs."""
    from ec_recommend.config import TlsConfig
    from ec_recommend.platform.rpc.mesh import load_mesh
    from ec_recommend.platform.rpc.server import RpcServer
    from ec_recommend.platform.security.allowlist import service_identity_middleware
    from ec_recommend.platform.security.call_token import CallSigner
    from ec_recommend.platform.security.tls import server_context
    from ec_recommend.platform.telemetry.rpc import server_middleware

    tls = tls if isinstance(tls, TlsConfig) else TlsConfig()
    policy = load_mesh().policy("product")
    return RpcServer(
        "product",
        [MemoryProducts()],
        port=port,
        ssl_context=server_context(tls, "product"),
        transport=transport,
        middlewares=[
            server_middleware("product"),
            service_identity_middleware("product", policy, tls, CallSigner(CALL_KEY)),
        ],
    )


async def serve_ours(port: int, transport: str | None = None) -> None:
    async with policed_server(port, transport=transport):  # type: ignore[attr-defined]
        settle_heap()
        print("ready", flush=True)
        await asyncio.Event().wait()


async def serve_full(port: int) -> None:
    from ec_recommend.config import Config, RpcConfig, StorageConfig, TlsConfig
    from ec_recommend.runtime.host import host_services

    config = Config(
        storage=StorageConfig(data_dir=__import__("pathlib").Path(tempfile.mkdtemp())),
        rpc=RpcConfig(ports={"product": port}),
        tls=TlsConfig(call_key=CALL_KEY),
    )
    async with host_services(config, ["product"]) as hosted:
        stub = hosted.clients.stub(pb.ProductServiceStub, "product")
        created = await stub.create_product(
            pb.CreateProductRequest(
                seller_id=PRODUCT.seller_id,
                name=PRODUCT.name,
                description=PRODUCT.description,
                base_price=PRODUCT.base_price,
                sale_price=PRODUCT.sale_price,
                stock_quantity=40,
                images=PRODUCT.images,
            )
        )
        settle_heap()
        print(json.dumps({"product_id": created.id}), flush=True)
        await asyncio.Event().wait()


def _bench_tls() -> object:
    from pathlib import Path

    from ec_recommend.config import TlsConfig

    certs = Path(os.environ["EC_BENCH_CERTS"])
    return TlsConfig(mode="STRICT", ca=certs / "ca.crt", cert_dir=certs)


async def serve_mtls(port: int, transport: str | None = None) -> None:
    async with policed_server(port, _bench_tls(), transport):  # type: ignore[attr-defined]
        settle_heap()
        print("ready", flush=True)
        await asyncio.Event().wait()


SERVERS: dict[str, Callable[[int], Awaitable[None]]] = {
    "bare": serve_bare,
    "ours": serve_ours,
    "full": serve_full,
    "mtls": serve_mtls,
    "grpclib": partial(serve_ours, transport="grpclib"),
    "mtls-grpclib": partial(serve_mtls, transport="grpclib"),
}


# ---------------------------------------------------------------- clients


Call = Callable[[], Awaitable[object]]


async def drive(call: Call, seconds: float, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    for _ in range(50):  # warm up connections and caches
        await call()
    stop_at = loop.time() + seconds

    async def worker() -> None:
        while loop.time() < stop_at:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "calls": len(latencies) + 50,
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def bare_client(port: int, product_id: str, seconds: float, conc: int) -> dict[str, float]:
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        method = channel.unary_unary(
            METHOD, request_serializer=bytes, response_deserializer=pb.Product.parse
        )
        request = pb.GetProductRequest(product_id=product_id)
        return await drive(lambda: method(request), seconds, conc)


async def our_client(
    port: int, product_id: str, seconds: float, conc: int, transport: str | None = None
) -> dict[str, float]:
    from ec_recommend.config import Endpoint
    from ec_recommend.platform.rpc.client import ClientFactory

    async with ClientFactory(
        {"product": [Endpoint("127.0.0.1", port)]},
        signer=_signer(),  # type: ignore[arg-type]
        service="gateway",
        transport=transport,
    ) as clients:
        stub = clients.stub(pb.ProductServiceStub, "product")
        request = pb.GetProductRequest(product_id=product_id)
        return await drive(lambda: stub.get_product(request), seconds, conc)


async def mtls_client(
    port: int, product_id: str, seconds: float, conc: int, transport: str | None = None
) -> dict[str, float]:
    from ec_recommend.config import Endpoint, TlsConfig
    from ec_recommend.platform.rpc.client import ClientFactory
    from ec_recommend.platform.security.tls import ClientTls

    tls = _bench_tls()
    assert isinstance(tls, TlsConfig)
    endpoints = {"product": [Endpoint("127.0.0.1", port)]}
    async with ClientFactory(
        endpoints,
        tls=ClientTls(tls, "gateway"),
        signer=_signer(),  # type: ignore[arg-type]
        service="gateway",
        transport=transport,
    ) as clients:
        stub = clients.stub(pb.ProductServiceStub, "product")
        request = pb.GetProductRequest(product_id=product_id)
        return await drive(lambda: stub.get_product(request), seconds, conc)


CLIENTS: dict[str, Callable[[int, str, float, int], Awaitable[dict[str, float]]]] = {
    "bare": bare_client,
    "ours": our_client,
    "full": our_client,
    "mtls": mtls_client,
    "grpclib": partial(our_client, transport="grpclib"),
    "mtls-grpclib": partial(mtls_client, transport="grpclib"),
}


async def same_process(in_process: bool, calls: int, traced: bool = False) -> dict[str, float]:
    """µs per GetProduct to a server hosted in this process, one call at a time."""
    from contextlib import nullcontext

    from ec_recommend.config import Endpoint
    from ec_recommend.platform.rpc.client import ClientFactory
    from ec_recommend.platform.rpc.server import RpcServer
    from ec_recommend.platform.telemetry.tracing import tracer

    server = policed_server(0)
    assert isinstance(server, RpcServer)
    async with (
        server,
        ClientFactory(
            {"product": [Endpoint("127.0.0.1", server.port)]},
            signer=_signer(),  # type: ignore[arg-type]
            service="gateway",
        ) as clients,
    ):
        if in_process:
            clients.host_locally(server)
        stub = clients.stub(pb.ProductServiceStub, "product")
        request = pb.GetProductRequest(product_id=PRODUCT.id)
        with tracer.start_as_current_span("caller") if traced else nullcontext():
            for _ in range(200):  # warm up
                await stub.get_product(request)
            cpu, began = time.process_time(), time.perf_counter()
            for _ in range(calls):
                await stub.get_product(request)
            wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"us_per_call": wall / calls * 1e6, "cpu_us_per_call": cpu / calls * 1e6}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system, all threads) process ``pid`` has used."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(variant: str, seconds: float, concurrency: int) -> dict[str, float]:
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        variant,
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = (await child.stdout.readline()).decode()
        product_id = json.loads(line)["product_id"] if line.startswith("{") else PRODUCT.id
        client = CLIENTS[variant]
        cpu = time.process_time(), process_cpu(child.pid)
        result = await client(port, product_id, seconds, concurrency)
        client_cpu = time.process_time() - cpu[0]
        server_cpu = process_cpu(child.pid) - cpu[1]
        result["client_cpu_us"] = client_cpu / result["calls"] * 1e6
        result["server_cpu_us"] = server_cpu / result["calls"] * 1e6
        return result
    finally:
        child.terminate()
        await child.wait()


def run_socket_variant(variant: str, args: argparse.Namespace) -> dict[str, float]:
    import uvloop

    # grpcio's aio runs on asyncio's own loop; ours on uvloop, as services do
    runner = asyncio.run if variant == "bare" else uvloop.run
    return runner(measure(variant, args.seconds, args.concurrency))


def cpu_per_call(r: dict[str, float]) -> float:
    return r["client_cpu_us"] + r["server_cpu_us"]


def ratios(results: dict[str, dict[str, float]]) -> dict[str, tuple[float, float]]:
    """(throughput, CPU per call) of each variant against its baseline in one round."""
    pairs = [(v, "bare") for v in results if v != "bare"]
    pairs += [("mtls", "ours"), ("mtls-grpclib", "grpclib")]
    out = {}
    for variant, base in pairs:
        if variant in results and base in results:
            r, b = results[variant], results[base]
            out[f"{variant}/{base}"] = (r["rps"] / b["rps"], cpu_per_call(b) / cpu_per_call(r))
    return out


def main(args: argparse.Namespace) -> None:
    import uvloop

    same_process_variants = ("local", "loopback", "local-traced")
    socket_variants = [v for v in args.variants if v not in same_process_variants]
    per_round: list[dict[str, tuple[float, float]]] = []
    for round_index in range(args.rounds):
        # rotated, so no variant always runs first (or last) on a drifting machine
        shift = round_index % max(1, len(socket_variants))
        results = {}
        for variant in socket_variants[shift:] + socket_variants[:shift]:
            results[variant] = r = run_socket_variant(variant, args)
            print(
                f"{variant:>12}: {r['rps']:9.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
                f"p99 {r['p99_ms']:6.2f} ms  CPU/call: client {r['client_cpu_us']:4.0f} µs, "
                f"server {r['server_cpu_us']:4.0f} µs",
                flush=True,
            )
        per_round.append(ratios(results))
    # On a loaded machine requests/s swing with the neighbours' load; CPU per
    # call (both processes) is the steadier measure of what a call costs. Each
    # ratio is taken within a round, then the median over the rounds.
    for name in per_round[0] if per_round else ():
        throughput = sorted(r[name][0] for r in per_round)
        cpu = sorted(r[name][1] for r in per_round)
        label = f"ratio {name}" + (
            " (STRICT/plain)" if name.startswith("mtls") and "bare" not in name else ""
        )
        spread = (
            f"  (rounds: throughput {throughput[0]:.2f}–{throughput[-1]:.2f}, "
            f"CPU {cpu[0]:.2f}–{cpu[-1]:.2f})"
            if len(per_round) > 1
            else ""
        )
        print(
            f"{label}: throughput {statistics.median(throughput):.2f}, "
            f"CPU per call {statistics.median(cpu):.2f}{spread}"
        )

    same_process_results = {}
    stack = ExitStack()
    for variant in same_process_variants:
        if variant in args.variants:
            calls = max(500, int(args.seconds * 1000))
            traced = variant == "local-traced"
            if traced:
                from ec_recommend.config import TelemetryConfig
                from ec_recommend.platform.telemetry.export import tracing

                # what ``up`` installs; kept for the rest of the process
                stack.enter_context(tracing(TelemetryConfig(), "bench"))
            same_process_results[variant] = r = uvloop.run(
                same_process(variant != "loopback", calls, traced)
            )
            print(
                f"{variant:>12}: {r['us_per_call']:7.0f} µs/call  "
                f"(CPU {r['cpu_us_per_call']:.0f} µs/call, client and server)",
                flush=True,
            )
    if "local" in same_process_results and "loopback" in same_process_results:
        local, loopback = same_process_results["local"], same_process_results["loopback"]
        print(
            f"in process vs loopback: x{loopback['us_per_call'] / local['us_per_call']:.1f} "
            f"faster ({loopback['us_per_call']:.0f} -> {local['us_per_call']:.0f} µs/call)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the socket variants, rotated; ratios are medians",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[
            "bare",
            "ours",
            "mtls",
            "grpclib",
            "mtls-grpclib",
            "full",
            "local",
            "loopback",
            "local-traced",
        ],
    )
    parser.add_argument("--serve", choices=sorted(SERVERS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if "EC_BENCH_CERTS" not in os.environ:  # inherited by the server children
        from pathlib import Path

        from ec_recommend.platform.security.certs import init_certificates

        certs = Path(tempfile.mkdtemp()) / "certs"
        init_certificates(certs, ["product", "gateway"])
        os.environ["EC_BENCH_CERTS"] = str(certs)
    if args.serve:
        import uvloop

        runner = asyncio.run if args.serve == "bare" else uvloop.run
        runner(SERVERS[args.serve](args.port))
    else:
        main(args)
