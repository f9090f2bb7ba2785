"""One trace from a client's order and payment to the consumers of their events.

``ec-recommend up`` runs as a subprocess exporting spans over OTLP/HTTP to a
stand-in collector in this test, so what is checked is what an operator's
collector would receive: gateway → order → product (reserve) → outbox
publish → consumers (inventory, notification), one trace id, correct parents
and span kinds.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ec_recommend.client import Client
from tests.conftest import wait_for

pytestmark = pytest.mark.asyncio

PASSWORD = "Passw0rd-trace"
TRACE = uuid.uuid4().hex
KIND = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    attributes: dict[str, Any]
    service: str


class Collector:
    """Receives OTLP/HTTP protobuf exports and keeps the spans."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    async def traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        Span(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=KIND.get(span.kind, str(span.kind)),
                            attributes={
                                a.key: getattr(
                                    a.value, a.value.WhichOneof("value") or "string_value"
                                )
                                for a in span.attributes
                            },
                            service=resource.get("service.name", ""),
                        )
                    )
        return web.Response(body=b"", content_type="application/x-protobuf")

    def trace(self, trace_id: str) -> list[Span]:
        return [span for span in self.spans if span.trace_id == trace_id]


@asynccontextmanager
async def collector_running() -> AsyncIterator[tuple[Collector, str]]:
    collector = Collector()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", collector.traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield collector, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def system_up(data_dir: Path, otlp: str) -> AsyncIterator[dict[str, Any]]:
    """``ec-recommend up`` exporting to ``otlp``; yields its endpoints.json."""
    log = (data_dir / "up.log").open("wb")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ec_recommend.cli",
        "up",
        "--port",
        "0",
        "--no-demo",
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
        env={
            **os.environ,
            "EC_OTLP_ENDPOINT": otlp,
            "EC_TRUSTED_PROXIES": "127.0.0.1",
            "EC_LOG_LEVEL": "WARNING",
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # the SDK's batch delay, so the test is quick
        },
    )
    try:
        endpoints_file = data_dir / "endpoints.json"
        await wait_for(lambda: endpoints_file.exists() or child.returncode is not None, timeout=120)
        assert child.returncode is None, (data_dir / "up.log").read_text()[-3000:]
        endpoints: dict[str, Any] = json.loads(endpoints_file.read_text(encoding="utf-8"))

        async def ready() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"{endpoints['gateway_url']}/readyz") as response,
                ):
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(ready, timeout=60, interval=0.2)
        yield endpoints
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), 30)
            except TimeoutError:
                child.kill()
                await child.wait()
        log.close()


async def account(gateway_url: str, role: str, address: str) -> Client:
    client = Client(gateway_url, headers={"X-Forwarded-For": address})
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
    await client.signup(email, PASSWORD, display_name=role, role=role)
    await client.login(email, PASSWORD)
    return client


def child_of(spans: list[Span], parent: Span, name: str, kind: str) -> Span:
    found = [
        s for s in spans if s.parent_id == parent.span_id and s.name == name and s.kind == kind
    ]
    assert len(found) == 1, (parent.name, name, kind, [(s.name, s.kind) for s in spans])
    return found[0]


def ancestors(spans: list[Span], span: Span) -> list[Span]:
    by_id = {s.span_id: s for s in spans}
    chain = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


async def test_order_and_payment_form_one_trace_down_to_the_consumers(tmp_path: Path) -> None:
    async with collector_running() as (collector, otlp), system_up(tmp_path, otlp) as endpoints:
        gateway_url = endpoints["gateway_url"]
        seller = await account(gateway_url, "seller", "10.9.0.1")
        customer = await account(gateway_url, "customer", "10.9.0.2")
        try:
            product = await seller.create_product("Traced kettle", 1200, 5)
            order = await customer._json(
                "POST",
                "/api/v1/orders",
                json={"items": [{"product_id": product["id"], "quantity": 2}]},
                headers={
                    "Idempotency-Key": uuid.uuid4().hex,
                    "traceparent": f"00-{TRACE}-{'1' * 16}-01",
                    "X-Request-ID": "trace-order-1",
                },
            )
            await customer._json(
                "POST",
                f"/api/v1/orders/{order['id']}/payment",
                json={"payment_method": {"type": "card", "token": "tok_visa"}},
                headers={
                    "Idempotency-Key": uuid.uuid4().hex,
                    "traceparent": f"00-{TRACE}-{'2' * 16}-01",
                },
            )

            def consumed() -> bool:
                names = {
                    (s.name, s.attributes.get("ec.event_type")) for s in collector.trace(TRACE)
                }
                return {
                    ("process analytics-event-queue", "order.created"),
                    ("process analytics-event-queue", "order.paid"),
                    ("process email-notification-queue", "order.paid"),
                } <= names

            await wait_for(consumed, timeout=60, interval=0.2)
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{gateway_url}/metrics") as scraped,
            ):
                assert scraped.status == 200
                metrics = await scraped.text()
        finally:
            await seller.close()
            await customer.close()

    spans = collector.trace(TRACE)
    # The REST request, continuing the client's trace.
    (create,) = [s for s in spans if s.name == "POST /api/v1/orders" and s.kind == "SERVER"]
    assert create.parent_id == "1" * 16
    assert create.attributes["ec.request_id"] == "trace-order-1"
    # gateway → order → product (reserve)
    order_client = child_of(spans, create, "ecommerce.order.OrderService/CreateOrder", "CLIENT")
    order_server = child_of(
        spans, order_client, "ecommerce.order.OrderService/CreateOrder", "SERVER"
    )
    reserve_clients = [
        s
        for s in spans
        if s.name == "ecommerce.product.ProductService/ReserveStock" and s.kind == "CLIENT"
    ]
    assert reserve_clients and all(order_server in ancestors(spans, s) for s in reserve_clients), (
        "ReserveStock is called while serving CreateOrder"
    )
    reserve_server = child_of(
        spans, reserve_clients[0], "ecommerce.product.ProductService/ReserveStock", "SERVER"
    )
    assert reserve_server.attributes["rpc.grpc.status_code"] == 0
    # outbox publish: a PRODUCER under the request that recorded the event
    producers = [s for s in spans if s.kind == "PRODUCER"]
    created_producer = [
        s for s in producers if s.attributes.get("ec.event_type") == "order.created"
    ]
    paid_producer = [s for s in producers if s.attributes.get("ec.event_type") == "order.paid"]
    assert len(created_producer) == 1 and len(paid_producer) == 1
    assert create in ancestors(spans, created_producer[0])
    (pay,) = [s for s in spans if s.name.startswith("POST /api/v1/orders/") and s.kind == "SERVER"]
    assert pay.attributes["http.route"] == "/api/v1/orders/{order_id}/payment"
    assert pay.parent_id == "2" * 16
    assert pay in ancestors(spans, paid_producer[0])
    # consumers continue the producer's trace as its children
    for queue, event_type, producer in (
        ("analytics-event-queue", "order.created", created_producer[0]),
        ("analytics-event-queue", "order.paid", paid_producer[0]),
        ("email-notification-queue", "order.paid", paid_producer[0]),
    ):
        consumers = [
            s
            for s in spans
            if s.name == f"process {queue}" and s.attributes.get("ec.event_type") == event_type
        ]
        assert consumers and all(c.kind == "CONSUMER" for c in consumers)
        assert all(c.parent_id == producer.span_id for c in consumers)
    # X-Request-ID → gRPC metadata → event correlation id
    assert order_server.attributes["ec.request_id"] == "trace-order-1"
    assert created_producer[0].attributes["messaging.message.conversation_id"] == "trace-order-1"
    created_consumer = [
        s
        for s in spans
        if s.kind == "CONSUMER" and s.attributes.get("ec.event_type") == "order.created"
    ]
    assert all(
        c.attributes["messaging.message.conversation_id"] == "trace-order-1"
        for c in created_consumer
    )
    # database statements appear under the services that ran them
    assert any(
        s.kind == "CLIENT"
        and s.attributes.get("db.system")
        and s.parent_id == reserve_server.span_id
        for s in spans
    )

    check_metrics(metrics, order_id=order["id"], product_id=product["id"])


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample of ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if match and labels.items() <= dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))).items():
            return float(match.group(2))
    return None


def total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    found = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if match and labels.items() <= dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))).items():
            found += float(match.group(2))
    return found


def check_metrics(text: str, *, order_id: str, product_id: str) -> None:
    """The seed's metrics and the operational ones after the order flow, in one process."""
    created = sample(
        text,
        "http_request_total",
        service="gateway",
        endpoint="/api/v1/orders",
        method="POST",
        status="201",
    )
    paid = sample(
        text,
        "http_request_total",
        endpoint="/api/v1/orders/{order_id}/payment",
        method="POST",
        status="200",
    )
    assert created == 1 and paid == 1
    for service, method in (("order", "CreateOrder"), ("product", "ReserveStock")):
        calls = sample(
            text, "grpc_request_duration_seconds_count", service=service, method=method, status="OK"
        )
        assert calls is not None and calls >= 1, (service, method)
    for queue, at_least in (("analytics-event-queue", 2), ("email-notification-queue", 1)):
        handled = sample(text, "queue_message_processed_total", queue=queue, status="success")
        assert handled is not None and handled >= 1, queue
        # every outcome (an event type a consumer ignores too) is counted
        assert total(text, "queue_message_processed_total", queue=queue) >= at_least, queue
        lag = sample(text, "queue_consumer_lag_seconds", queue=queue)
        assert lag is not None and 0 <= lag < 60
    assert sample(text, "circuit_breaker_state", service="order", state="closed") == 1
    assert sample(text, "outbox_backlog_events", service="order") is not None
    assert sample(text, "queue_dlq_messages") is not None
    assert sample(text, "http_requests_in_flight", service="gateway") is not None
    assert sample(text, "db_pool_connections", service="order") is not None
    assert order_id not in text and product_id not in text, "label values stay bounded"
