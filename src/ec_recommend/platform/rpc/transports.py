"""Which transport carries gRPC calls between processes.

``grpcio`` runs HTTP/2 and TLS in gRPC's C core (``grpc.aio``); ``grpclib``
in Python (h2). Both serve the same pipeline (``RpcServer.serve``) and the
same client policies (``CallInvoker``), speak the same gRPC on the wire, and
interoperate. grpcio is the default because the Python HTTP/2 stack was most
of a call's CPU (docs/performance.md). grpclib remains for what grpcio's
Python API cannot do: PERMISSIVE mTLS on the server (grpcio can require a
client certificate or not ask for one, but not ask and verify an optional
one) and clients given a ready ``ssl.SSLContext`` (grpcio takes PEM files).

The choice is ``rpc.transport`` (``EC_RPC_TRANSPORT``), passed in by the
composition root; servers and clients built without it use ``DEFAULT``.
"""

from __future__ import annotations

from typing import Literal

Transport = Literal["grpcio", "grpclib"]

# Read when a server or client factory is built without a choice (tests switch it).
DEFAULT: Transport = "grpcio"


def resolve(transport: str | None) -> Transport:
    """``transport``, or the default when None."""
    if transport is None:
        return DEFAULT
    if transport == "grpcio":
        return "grpcio"
    if transport == "grpclib":
        return "grpclib"
    raise ValueError(f"unknown rpc transport {transport!r}")
