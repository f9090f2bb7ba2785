"""The system as a fleet: two gateways, two product replicas, one host per other part.

Nine network namespaces on a private bridge (tests/fleet/netns.py), each
running ``ec-recommend serve`` with its endpoints given only by
configuration, STRICT mTLS with certificates from ``certs init``,
PostgreSQL (a schema per service) and Redis over the bridge, moto on a
broker host (tests/fleet/fleet.py). Everything here crosses the bridge.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.client import Client
from ec_recommend.config import Endpoint, TlsConfig
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.security.certs import init_certificates
from ec_recommend.platform.security.tls import ClientTls
from tests.conftest import wait_for
from tests.e2e.test_realtime_push import until
from tests.fleet.conftest import record
from tests.fleet.fleet import Fleet
from tests.integration.mesh.faulty import mesh
from tests.integration.mesh.test_mtls import bare_context

pytestmark = [pytest.mark.asyncio, pytest.mark.fleet]

PASSWORD = "Passw0rd-fleet"
SPREAD_SECONDS = 5.0  # of load before the kill, and with one replica down


def client_address() -> str:
    """A fresh X-Forwarded-For address, so no test shares another's anonymous budget."""
    n = uuid.uuid4().int
    return f"10.{n & 255}.{(n >> 8) & 255}.{(n >> 16) & 255}"


@asynccontextmanager
async def client(url: str, address: str | None = None) -> AsyncIterator[Client]:
    async with Client(url, headers={"X-Forwarded-For": address or client_address()}) as api:
        yield api


async def signed_up(api: Client, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:12]}@example.com"
    await api.signup(email, PASSWORD, display_name=f"{role} {email[:6]}", role=role)
    await api.login(email, PASSWORD)
    return email


async def test_shopper_signs_up_on_a_orders_on_b_and_hears_on_a(fleet: Fleet) -> None:
    gateway_a, gateway_b = fleet.gateway_url("gateway-a"), fleet.gateway_url("gateway-b")
    async with (
        client(gateway_a) as seller,
        client(gateway_a) as shopper_on_a,
        client(gateway_b) as shopper_on_b,
    ):
        await signed_up(seller, "seller")
        product = await seller.create_product("Fleet kettle", 4800, 3)
        await signed_up(shopper_on_a, "customer")
        shopper_on_b.token = shopper_on_a.token  # the same session, on the other gateway
        async with shopper_on_a.subscribe("orders") as pushed:
            await shopper_on_b.add_to_cart(product["id"], 2)
            order = await shopper_on_b.create_order(from_cart=True)
            assert (await shopper_on_b.pay(order["id"]))["status"] == "SUCCEEDED"
            paid = await until(
                pushed,
                lambda m: (
                    m["data"].get("order_id") == order["id"] and m["data"].get("status") == "PAID"
                ),
                timeout=60,
            )
        assert paid["type"] == "order.status_changed"
        assert (await shopper_on_a.get_order(order["id"]))["status"] == "PAID"
        assert (await seller.get_stock(product["id"]))["available_stock"] == 1


async def test_the_anonymous_limit_is_one_budget_across_both_gateways(fleet: Fleet) -> None:
    address = client_address()  # one anonymous client, 100 requests a minute
    gateways = [fleet.gateway_url("gateway-a"), fleet.gateway_url("gateway-b")]
    async with client(gateways[0], address) as a, client(gateways[1], address) as b:
        statuses = []
        for n in range(100):
            api = (a, b)[n % 2]
            response = await api.request("GET", "/api/v1/products", check=False)
            statuses.append(response.status)
        assert statuses == [200] * 100
        for api in (a, b):  # the 101st, and the 102nd on the other gateway
            response = await api.request("GET", "/api/v1/products", check=False)
            assert response.status == 429
            assert response.body["code"] == "RATE_LIMITED"
            assert int(response.headers["Retry-After"]) > 0


# -- load over the product replicas ------------------------------------------------


async def scraped(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()


def samples(text: str, metric: str, **labels: str) -> float:
    """The sum of ``metric``'s samples whose labels include ``labels`` (Prometheus text)."""
    total = 0.0
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name != metric:
            continue
        label_text, _, value = rest.rpartition("}")
        if all(f'{key}="{wanted}"' in label_text for key, wanted in labels.items()):
            total += float(value.split()[0])
    return total


async def product_calls(fleet: Fleet, host: str) -> int:
    """ListProducts calls the product replica on ``host`` has answered since it started."""
    text = await scraped(fleet.metrics_url(host))
    return int(samples(text, "grpc_request_duration_seconds_count", method="ListProducts"))


async def gateway_requests(fleet: Fleet, host: str) -> int:
    text = await scraped(fleet.gateway_url(host) + "/metrics")
    return int(samples(text, "http_request_total", endpoint="/api/v1/products"))


@dataclass
class Load:
    """Catalogue reads through both gateways until stopped; every answer counted."""

    shoppers: list[Client]
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, workers: int = 8) -> None:
        await asyncio.gather(*(self._worker(n) for n in range(workers)))

    async def _worker(self, n: int) -> None:
        api = self.shoppers[n % len(self.shoppers)]
        while not self.stop.is_set():
            try:
                response = await api.request(
                    "GET", "/api/v1/products", params={"page_size": 5}, check=False
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.failures.append(f"{api.base_url}: {exc!r}")
                continue
            if response.status == 200:
                self.answered += 1
            else:
                self.failures.append(f"{api.base_url}: {response.status} {response.body}")


async def test_load_spreads_over_both_replicas_and_survives_one_being_killed(
    fleet: Fleet,
) -> None:
    replicas = ["product-1", "product-2"]
    async with (
        client(fleet.gateway_url("gateway-a")) as on_a,
        client(fleet.gateway_url("gateway-b")) as on_b,
    ):
        await signed_up(on_a, "customer")
        on_b.token = on_a.token
        load = Load([on_a, on_b])
        gateways_before = [await gateway_requests(fleet, g) for g in ("gateway-a", "gateway-b")]
        before = [await product_calls(fleet, host) for host in replicas]
        running = asyncio.create_task(load.run())
        try:
            await asyncio.sleep(SPREAD_SECONDS)  # the load runs meanwhile
            spread = [
                await product_calls(fleet, h) - b for h, b in zip(replicas, before, strict=True)
            ]
            victim = fleet.processes["product-2"]
            victim.signal(signal.SIGKILL)
            await asyncio.to_thread(victim.wait)
            answered_at_kill = load.answered
            await asyncio.sleep(SPREAD_SECONDS)  # product-1 alone
            answered_while_down = load.answered - answered_at_kill
            restarted = time.monotonic()
            victim.start()
            await asyncio.to_thread(victim.ready)
            ready_after = time.monotonic() - restarted
            await wait_for(lambda: product_calls(fleet, "product-2"), timeout=60, interval=0.2)
            rejoined_after = time.monotonic() - restarted
        finally:
            load.stop.set()
            await running
        gateways = [
            await gateway_requests(fleet, g) - b
            for g, b in zip(("gateway-a", "gateway-b"), gateways_before, strict=True)
        ]
    record("requests per gateway (A, B)", f"{gateways[0]}, {gateways[1]}")
    record(
        f"ListProducts per product replica in {SPREAD_SECONDS:.0f} s (1, 2)",
        f"{spread[0]}, {spread[1]}",
    )
    record("requests answered while product-2 was down", str(answered_while_down))
    record("failed requests during the kill", str(len(load.failures)))
    record(
        "product-2 rejoined after its restart",
        f"{rejoined_after:.1f} s (ready after {ready_after:.1f} s)",
    )
    for host in ("gateway-a", "product-1", "order", "search", "consumers"):
        rss, cpu = fleet.processes[host].usage()
        record(f"{host} after the load: RSS, CPU", f"{rss:.0f} MB, {cpu:.1f} s")
    assert not load.failures, load.failures[:5]
    assert min(spread) >= 0.25 * sum(spread), spread  # round robin from every caller
    assert min(gateways) > 0 and answered_while_down > 0


# -- mTLS across the bridge ---------------------------------------------------------


async def get_product(
    fleet: Fleet, *, tls: ClientTls | None = None, context: ssl.SSLContext | None = None
) -> pb.Product:
    address = fleet.endpoint("product-1", "product")
    host, port = address.split(":")
    async with ClientFactory(
        {"product": [Endpoint(host, int(port))]},
        mesh=mesh(retry={"max_retries": 0}),
        tls=tls,
        ssl_context=context,
    ) as clients:
        stub = clients.stub(pb.ProductServiceStub, "product")
        return await stub.get_product(pb.GetProductRequest(product_id=str(uuid.uuid4())))


async def test_a_service_refuses_callers_without_a_certificate_of_the_fleet_ca(
    fleet: Fleet, tmp_path: Path
) -> None:
    ca = fleet.certs / "ca.crt"
    fleet_tls = TlsConfig(mode="STRICT", ca=ca, cert_dir=fleet.certs)
    with pytest.raises(errors.NotFound):  # the gateway's certificate gets an answer
        await get_product(fleet, tls=ClientTls(fleet_tls, "gateway"))

    with pytest.raises(errors.Unavailable):  # no certificate: refused at the handshake
        await get_product(fleet, context=bare_context(ca))

    other = tmp_path / "other-ca"
    init_certificates(other, ["gateway"])  # the same names, another CA
    with pytest.raises(errors.Unavailable):
        await get_product(fleet, context=_presenting(bare_context(ca), other, "gateway"))

    with pytest.raises(errors.ServiceError):  # and plaintext gets nowhere
        await get_product(fleet)


def _presenting(context: ssl.SSLContext, certs: Path, name: str) -> ssl.SSLContext:
    context.load_cert_chain(certs / f"{name}.crt", certs / f"{name}.key")
    return context
