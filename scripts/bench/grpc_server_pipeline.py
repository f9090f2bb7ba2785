#!/usr/bin/env python
"""CPU per call of the server's own Python work on a GetProduct, no sockets.

One ``RpcServer`` as ``grpc_unary.py`` builds it (telemetry middleware, the
allow-list, the signed call identity, error translation), each call run
through ``RpcServer.serve`` on a ``LocalStream`` as the grpcio transport
hands it over: decoding the request, the handler, encoding the reply. What
grpcio's C core and the event loop spend per call is not in it (see
``grpc_unary.py`` for the whole call); on a shared machine this is the
steadier figure for changes to the pipeline itself.
Usage: .venv/bin/python scripts/bench/grpc_server_pipeline.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import grpc_unary as bench  # the bench next to this one


async def main(calls: int, rounds: int) -> None:
    from multidict import MultiDict

    from ec_recommend.platform.rpc.local import LocalStream
    from ec_recommend.platform.rpc.server import RpcServer
    from ec_recommend.platform.security.call_token import CallSigner

    server = bench.policed_server(0)
    assert isinstance(server, RpcServer)
    async with server:
        token = CallSigner(bench.CALL_KEY).sign("gateway", None)
        metadata = (("user-agent", "grpc-python-asyncio"), ("x-ec-call", token))
        request = bytes(bench.pb.GetProductRequest(product_id=bench.PRODUCT.id))
        entry = server.methods[bench.METHOD]

        async def once() -> None:
            stream = LocalStream(
                server.codec,
                request,
                entry.request_type,
                entry.reply_type,
                MultiDict(metadata),
                None,
            )
            await server.serve(bench.METHOD, entry.func, stream, None)

        for _ in range(2000):  # warm up
            await once()
        best = float("inf")
        for _ in range(rounds):
            began = time.process_time()
            for _ in range(calls):
                await once()
            best = min(best, (time.process_time() - began) / calls * 1e6)
    print(f"server pipeline: {best:.1f} µs CPU/call (best of {rounds} x {calls})")


if __name__ == "__main__":
    import uvloop

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    uvloop.run(main(args.calls, args.rounds))
