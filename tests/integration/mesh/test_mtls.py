"""mTLS (STRICT): who is refused at the handshake, who gets PERMISSION_DENIED."""

from __future__ import annotations

import datetime
import secrets
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trustme

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Endpoint, TlsConfig
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.mesh import load_mesh
from ec_recommend.platform.rpc.server import RpcServer
from ec_recommend.platform.security.allowlist import service_identity_middleware
from ec_recommend.platform.security.call_token import CallSigner
from ec_recommend.platform.security.certs import Authority, init_certificates
from ec_recommend.platform.security.identity import acting_as
from ec_recommend.platform.security.tls import ClientTls, server_context
from tests.conftest import wait_for
from tests.integration.mesh.faulty import FaultyProducts, mesh

pytestmark = pytest.mark.asyncio

GET = pb.GetProductRequest(product_id="p1")
RESERVE = pb.ReserveStockRequest(reservation_id="r1")

KEY = secrets.token_bytes(32)


@pytest.fixture
def pki(tmp_path: Path) -> TlsConfig:
    certs = tmp_path / "certs"
    init_certificates(certs, ["product", "gateway", "order", "cart"])
    return TlsConfig(mode="STRICT", ca=certs / "ca.crt", cert_dir=certs)


@asynccontextmanager
async def strict_product(
    tls: TlsConfig, port: int = 0
) -> AsyncIterator[tuple[FaultyProducts, RpcServer]]:
    service = FaultyProducts()
    policy = replace(load_mesh().policy("product"))
    async with RpcServer(
        "product",
        [service],
        port=port,
        drain_timeout=0.5,
        ssl_context=server_context(tls, "product"),
        # no signed identity in these calls: the certificate alone names the caller
        middlewares=[service_identity_middleware("product", policy, tls, CallSigner(KEY))],
    ) as server:
        yield service, server


@asynccontextmanager
async def client(
    server: RpcServer,
    *,
    tls: ClientTls | None = None,
    context: ssl.SSLContext | None = None,
    signer: CallSigner | None = None,
) -> AsyncIterator[pb.ProductServiceStub]:
    async with ClientFactory(
        {"product": [Endpoint("127.0.0.1", server.port)]},
        mesh=mesh(retry={"max_retries": 0}),
        tls=tls,
        ssl_context=context,
        signer=signer,
        service="gateway",
    ) as clients:
        yield clients.stub(pb.ProductServiceStub, "product")


def bare_context(ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    return context


async def test_allowed_caller_gets_through(pki: TlsConfig) -> None:
    async with (
        strict_product(pki) as (service, server),
        client(server, tls=ClientTls(pki, "order")) as stub,
    ):
        assert (await stub.get_product(GET)).name == "ok"
        assert (await stub.reserve_stock(RESERVE)).reservation_id == "r1"
    assert len(service.calls["ReserveStock"]) == 1


async def test_caller_not_on_the_allow_list_gets_permission_denied(pki: TlsConfig) -> None:
    async with (
        strict_product(pki) as (service, server),
        client(server, tls=ClientTls(pki, "cart")) as stub,
    ):
        assert (await stub.get_product(GET)).name == "ok"  # reads are open to all services
        with pytest.raises(errors.PermissionDenied) as caught:
            await stub.reserve_stock(RESERVE)
    assert caught.value.details["caller"] == "cart"
    assert not service.calls["ReserveStock"]


async def test_client_without_a_certificate_is_refused(pki: TlsConfig) -> None:
    assert pki.ca is not None
    async with (
        strict_product(pki) as (service, server),
        client(server, context=bare_context(pki.ca)) as stub,
    ):
        with pytest.raises(errors.Unavailable):
            await stub.get_product(GET)
    assert service.total() == 0


async def test_plaintext_client_is_refused(pki: TlsConfig) -> None:
    async with strict_product(pki) as (service, server), client(server) as stub:
        with pytest.raises(errors.ServiceError):
            await stub.get_product(GET)
    assert service.total() == 0


async def test_certificate_from_another_ca_is_refused(pki: TlsConfig, tmp_path: Path) -> None:
    assert pki.ca is not None
    other = trustme.CA()
    cert = other.issue_cert("gateway")
    context = bare_context(pki.ca)
    cert.configure_cert(context)
    async with strict_product(pki) as (service, server), client(server, context=context) as stub:
        with pytest.raises(errors.Unavailable):
            await stub.get_product(GET)
    assert service.total() == 0


async def test_expired_certificate_is_refused(pki: TlsConfig, tmp_path: Path) -> None:
    assert pki.ca is not None and pki.cert_dir is not None
    now = datetime.datetime.now(datetime.UTC)
    cert, key = Authority.load(pki.cert_dir).issue(
        "gateway",
        not_before=now - datetime.timedelta(days=10),
        not_after=now - datetime.timedelta(days=1),
    )
    (tmp_path / "old.crt").write_bytes(cert)
    (tmp_path / "old.key").write_bytes(key)
    context = bare_context(pki.ca)
    context.load_cert_chain(tmp_path / "old.crt", tmp_path / "old.key")
    async with strict_product(pki) as (service, server), client(server, context=context) as stub:
        with pytest.raises(errors.Unavailable):
            await stub.get_product(GET)
    assert service.total() == 0


async def test_client_refuses_a_server_that_is_not_the_service_it_dials(
    pki: TlsConfig,
) -> None:
    service = FaultyProducts()
    # the "cart" certificate serving on the port the client believes is product's
    async with (
        RpcServer("product", [service], ssl_context=server_context(pki, "cart")) as server,
        client(server, tls=ClientTls(pki, "gateway")) as stub,
    ):
        with pytest.raises(errors.Unavailable):
            await stub.get_product(GET)
    assert service.total() == 0


async def test_permissive_admits_callers_without_a_certificate_to_open_methods_only(
    pki: TlsConfig,
) -> None:
    assert pki.ca is not None
    permissive = replace(pki, mode="PERMISSIVE")
    async with (
        strict_product(permissive) as (service, server),
        client(server, context=bare_context(pki.ca), signer=CallSigner(KEY)) as stub,
    ):
        # no certificate, but a signed call identity: open methods only
        assert (await stub.get_product(GET)).name == "ok"
        with pytest.raises(errors.PermissionDenied):
            await stub.reserve_stock(RESERVE)
    async with (
        strict_product(permissive) as (service, server),
        client(server, context=bare_context(pki.ca)) as anonymous,
    ):
        with pytest.raises(errors.Unauthenticated):  # neither: nobody at all
            await anonymous.get_product(GET)
    assert not service.calls["ReserveStock"]


async def test_a_process_with_only_a_certificate_directory_calls_as_its_consumer(
    pki: TlsConfig, tmp_path: Path
) -> None:
    """As ``serve inventory analytics`` with EC_TLS_CERT_DIR and no EC_TLS_CERT.

    Consumers build their stubs while acting as themselves; the process has
    no certificate of its own to build them with, and needs none.
    """
    assert pki.cert_dir is not None
    init_certificates(pki.cert_dir, ["inventory"])
    tls = ClientTls(replace(pki, cert=None, key=None))
    async with (
        strict_product(pki) as (service, server),
        ClientFactory(
            {"product": [Endpoint("127.0.0.1", server.port)]}, mesh=mesh(), tls=tls
        ) as clients,
    ):
        with acting_as("inventory"):
            stub = clients.stub(pb.ProductServiceStub, "product")
            assert (await stub.get_product(GET)).name == "ok"
    assert len(service.calls["GetProduct"]) == 1


async def test_its_health_probes_present_the_certificate_of_the_calling_consumer(
    pki: TlsConfig,
) -> None:
    """The same process: a product replica goes away and comes back on its port."""
    assert pki.cert_dir is not None
    init_certificates(pki.cert_dir, ["inventory"])
    tls = ClientTls(replace(pki, cert=None, key=None))
    async with strict_product(pki) as (_, server):
        port = server.port
    async with ClientFactory(
        {"product": [Endpoint("127.0.0.1", port)]},
        mesh=mesh(retry={"max_retries": 0}),
        tls=tls,
    ) as clients:
        with acting_as("inventory"):
            stub = clients.stub(pb.ProductServiceStub, "product")
            for _ in range(2):  # refused twice: ejected
                with pytest.raises(errors.Unavailable):
                    await stub.get_product(GET)

            def healthy() -> bool:
                return bool(clients.health_report()["product"]["endpoints"][0]["healthy"])

            assert not healthy()
            async with strict_product(pki, port):

                async def back_in_rotation() -> bool:
                    await stub.get_product(GET)  # picking endpoints schedules the probes
                    return healthy()

                await wait_for(back_in_rotation, timeout=10)
