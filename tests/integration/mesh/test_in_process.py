"""A service hosted in the caller's process, called in process or over a socket.

Every test runs both ways and expects the same: results, typed errors and
their details, authorization refusals, deadline expiry, cancellation, drain,
server and client metrics. In process, no connection is ever opened.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Endpoint, TlsConfig
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.mesh import load_mesh
from ec_recommend.platform.rpc.observers import MeshObserver
from ec_recommend.platform.rpc.server import RpcServer
from ec_recommend.platform.security import tls as tls_module
from ec_recommend.platform.security.allowlist import service_identity_middleware
from ec_recommend.platform.security.call_token import CallSigner
from ec_recommend.platform.security.certs import init_certificates
from ec_recommend.platform.security.identity import acting_as
from ec_recommend.platform.security.tls import (
    ClientTls,
    certificate_service,
    peer_service,
    server_context,
)
from ec_recommend.platform.telemetry import unrecorded
from ec_recommend.platform.telemetry.metrics import Metrics
from ec_recommend.platform.telemetry.rpc import server_middleware
from ec_recommend.platform.telemetry.tracing import current_ids, tracer
from ec_recommend.platform.telemetry.unrecorded import Unrecorded
from tests.conftest import wait_for
from tests.integration.mesh.faulty import FaultyProducts, mesh
from tests.telemetry_support import memory_exporter

pytestmark = pytest.mark.asyncio

GET = pb.GetProductRequest(product_id="p1")
RESERVE = pb.ReserveStockRequest(reservation_id="r1")

PATHS = pytest.mark.parametrize("in_process", [False, True], ids=["socket", "in_process"])

SIGNER = CallSigner(secrets.token_bytes(32))


class ServerMetrics(Metrics):
    """Records what the server middleware observes, instead of exporting it."""

    def __init__(self) -> None:
        self.grpc: list[tuple[str, str, str]] = []

    def observe_grpc(self, service: str, method: str, status: str, seconds: float) -> None:
        self.grpc.append((service, method, status))


@dataclass
class CallLog(MeshObserver):
    finished: list[tuple[str, str, str]] = field(default_factory=list)

    def call_finished(self, service: str, method: str, code: str, seconds: float) -> None:
        self.finished.append((service, method, code))


@dataclass
class Hosted:
    service: FaultyProducts
    server: RpcServer
    stub: pb.ProductServiceStub
    metrics: ServerMetrics
    calls: CallLog


@asynccontextmanager
async def hosted(
    in_process: bool, tls: TlsConfig | None = None, *, drain_timeout: float = 5.0
) -> AsyncIterator[Hosted]:
    """FaultyProducts served with host_services' middlewares; a client in this process."""
    tls = tls or TlsConfig()
    service = FaultyProducts()
    metrics = ServerMetrics()
    middlewares = [
        server_middleware("product", metrics),
        service_identity_middleware("product", load_mesh().policy("product"), tls, SIGNER),
    ]
    async with (
        RpcServer(
            "product",
            [service],
            middlewares=middlewares,
            ssl_context=server_context(tls, "product"),
            drain_timeout=drain_timeout,
        ) as server,
        ClientFactory(
            {"product": [Endpoint("127.0.0.1", server.port)]},
            pool_size=1,
            mesh=mesh(retry={"max_retries": 0}),
            tls=ClientTls(tls, "gateway") if tls.enabled else None,
            signer=SIGNER,
            service="gateway",
        ) as clients,
    ):
        if in_process:
            clients.host_locally(server)
        calls = CallLog()
        clients.add_observer(calls)
        stub = clients.stub(pb.ProductServiceStub, "product")
        yield Hosted(service, server, stub, metrics, calls)
        assert (server.connections_accepted == 0) is in_process


@pytest.fixture
def strict(tmp_path: Path) -> TlsConfig:
    certs = tmp_path / "certs"
    init_certificates(certs, ["product", "gateway", "order", "cart"])
    return TlsConfig(mode="STRICT", ca=certs / "ca.crt", cert_dir=certs)


@PATHS
async def test_same_results_errors_and_metrics(in_process: bool) -> None:
    async with hosted(in_process) as h:
        product = await h.stub.get_product(GET)
        assert (product.id, product.name) == ("p1", "ok")

        h.service.scripts["GetProduct"].always = errors.NotFound("gone", product_id="p1", n=3)
        with pytest.raises(errors.NotFound) as caught:
            await h.stub.get_product(GET)
        assert caught.value.message == "gone"
        assert dict(caught.value.details) == {"product_id": "p1", "n": "3"}  # as on the wire

        h.service.scripts["GetProduct"].always = errors.PaymentDeclined("card")
        with pytest.raises(errors.PaymentDeclined):
            await h.stub.get_product(GET)

    assert h.metrics.grpc == [
        ("product", "GetProduct", "OK"),
        ("product", "GetProduct", "NOT_FOUND"),
        ("product", "GetProduct", "FAILED_PRECONDITION"),
    ]
    assert h.calls.finished == [
        ("product", "GetProduct", "OK"),
        ("product", "GetProduct", "NOT_FOUND"),
        ("product", "GetProduct", "FAILED_PRECONDITION"),
    ]


class Crashing(FaultyProducts):
    async def get_product(self, message: pb.GetProductRequest) -> pb.Product:
        raise RuntimeError("a bug")


@PATHS
async def test_an_unexpected_exception_is_internal_and_logged(
    in_process: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with hosted(in_process) as h:
        h.server._handlers[0].get_product = Crashing().get_product  # type: ignore[method-assign]
        with pytest.raises(errors.Internal) as caught:
            await h.stub.get_product(GET)
    assert caught.value.message == "internal error"
    assert "product /ecommerce.product.ProductService/GetProduct failed" in caplog.text


@PATHS
async def test_the_allow_list_sees_the_acting_service_as_its_certificate_names_it(
    in_process: bool, strict: TlsConfig
) -> None:
    async with hosted(in_process, strict) as h:
        # outside any service: the gateway's certificate; reserving is order's
        with pytest.raises(errors.PermissionDenied) as caught:
            await h.stub.reserve_stock(RESERVE)
        assert caught.value.details == {"reason": "caller_not_allowed", "caller": "gateway"}
        with acting_as("cart"), pytest.raises(errors.PermissionDenied) as caught:
            await h.stub.reserve_stock(RESERVE)
        assert caught.value.details["caller"] == "cart"
        with acting_as("order"):
            reply = await h.stub.reserve_stock(RESERVE)
        assert reply.reservation_id == "r1"
        assert len(h.service.calls["ReserveStock"]) == 1  # refusals never reached it
    assert [status for *_, status in h.metrics.grpc] == ["PERMISSION_DENIED"] * 2 + ["OK"]


@PATHS
async def test_a_call_past_its_deadline_fails_and_the_handler_is_cancelled(
    in_process: bool,
) -> None:
    async with hosted(in_process) as h:
        h.service.scripts["GetProduct"].hang_forever = True
        with pytest.raises(errors.DeadlineExceeded):
            await h.stub.get_product(GET, timeout=0.2)
        await wait_for(lambda: h.service.cancelled["GetProduct"] == 1)
    assert h.metrics.grpc == [("product", "GetProduct", "CANCELLED")]
    assert h.calls.finished == [("product", "GetProduct", "DEADLINE_EXCEEDED")]


@PATHS
async def test_cancelling_the_caller_cancels_the_handler(in_process: bool) -> None:
    async with hosted(in_process) as h:
        h.service.scripts["GetProduct"].hang_forever = True
        call = asyncio.create_task(h.stub.get_product(GET))
        await wait_for(lambda: h.service.calls["GetProduct"])
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await wait_for(lambda: h.service.cancelled["GetProduct"] == 1)


@PATHS
async def test_a_draining_server_refuses_new_calls_as_unsent(in_process: bool) -> None:
    async with hosted(in_process) as h:
        await h.stub.get_product(GET)  # over a socket: the connection is open
        await h.server.drain()
        with pytest.raises(errors.Unavailable) as caught:
            await h.stub.create_product(pb.CreateProductRequest(name="mug"))
        assert caught.value.details == {"reason": "draining"}
        assert "CreateProduct" not in h.service.calls


async def test_stopping_the_server_ends_an_in_process_call_as_unavailable() -> None:
    async with hosted(True, drain_timeout=0.1) as h:
        h.service.scripts["GetProduct"].hang_forever = True
        call = asyncio.create_task(h.stub.get_product(GET))
        await wait_for(lambda: h.service.calls["GetProduct"])
        await h.server.__aexit__(None, None, None)
        with pytest.raises(errors.Unavailable):
            await call
        assert h.service.cancelled["GetProduct"] == 1


_callers_secret: ContextVar[str] = ContextVar("callers_secret", default="unset")


class Peeking(FaultyProducts):
    seen: list[str]

    async def get_product(self, message: pb.GetProductRequest) -> pb.Product:
        self.seen.append(_callers_secret.get())
        message.product_id = "changed by the server"
        return pb.Product(id="p1")


@PATHS
async def test_the_server_sees_nothing_of_the_callers_objects_or_context(
    in_process: bool,
) -> None:
    peeking = Peeking()
    peeking.seen = []
    async with hosted(in_process) as h:
        h.server._handlers[0].get_product = peeking.get_product  # type: ignore[method-assign]
        request = pb.GetProductRequest(product_id="p1")
        token = _callers_secret.set("the caller's")
        try:
            reply = await h.stub.get_product(request)
        finally:
            _callers_secret.reset(token)
    assert peeking.seen == ["unset"]
    assert request.product_id == "p1"  # the server decoded its own copy
    assert reply.id == "p1"


async def test_the_presented_identity_is_what_a_handshake_reads_from_the_certificate(
    strict: TlsConfig,
) -> None:
    assert strict.cert_dir is not None
    for name in ("product", "gateway", "order", "cart"):
        path = strict.cert_dir / f"{name}.crt"
        # what getpeercert() returns for this certificate (CPython's own decoder)
        decoded = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
        assert certificate_service(path) == peer_service(decoded) == name
    tls = ClientTls(strict, "gateway")
    assert tls.presented_service(None) == "gateway"
    assert tls.presented_service("order") == "order"


@PATHS
async def test_large_messages_cross_intact_past_the_flow_control_windows(
    in_process: bool,
) -> None:
    name = "名" * 400_000  # 1.2 MB: many HTTP/2 windows and frames on a socket
    async with hosted(in_process) as h:
        replies = await asyncio.gather(
            *(h.stub.create_product(pb.CreateProductRequest(name=name)) for _ in range(3))
        )
    assert [reply.name == name for reply in replies] == [True] * 3


async def test_a_connection_s_peer_certificate_is_read_once(
    strict: TlsConfig, monkeypatch: pytest.MonkeyPatch, rpc_transport: str
) -> None:
    if rpc_transport == "grpcio":
        pytest.skip("grpcio's C core reads the peer certificate in the handshake, in C")
    decoded: list[str | None] = []

    def counting(cert: Any) -> str | None:
        decoded.append(peer_service(cert))
        return decoded[-1]

    monkeypatch.setattr(tls_module, "peer_service", counting)
    async with hosted(False, strict) as h:
        with acting_as("order"):
            for _ in range(5):
                await h.stub.reserve_stock(RESERVE)
        assert h.server.connections_accepted == 1  # pool_size=1
    assert decoded == ["order"]  # five calls, one connection, one certificate read


@PATHS
async def test_spans_that_record_nothing_still_carry_the_callers_trace(
    in_process: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = memory_exporter()  # the SDK is installed, and records every span it starts
    spans.clear()
    # as in ``up`` without an exporter: the RPC spans are made without the SDK
    monkeypatch.setattr(unrecorded, "_unrecorded", Unrecorded(RandomIdGenerator(), every=True))
    seen: list[tuple[str, str] | None] = []
    async with hosted(in_process) as host:
        served = host.service.get_product

        async def get_product(message: pb.GetProductRequest) -> pb.Product:
            seen.append(current_ids())  # what the handler's log lines carry
            return await served(message)

        host.service.get_product = get_product  # type: ignore[method-assign]
        with tracer.start_as_current_span("gateway request"):
            caller = current_ids()
            assert await host.stub.get_product(GET) == pb.Product(id="p1", name="ok")
            assert current_ids() == caller
    assert caller is not None and seen[0] is not None
    assert seen[0][0] == caller[0], "the server continues the caller's trace"
    assert seen[0][1] != caller[1], "in a span of its own"
    assert [span.name for span in spans.get_finished_spans()] == ["gateway request"]
    assert host.metrics.grpc == [("product", "GetProduct", "OK")]
