"""One trace from a client's HTTP request through the gateway into the services,
the metrics that traffic leaves behind, and log lines that lead to the trace."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ec_recommend.platform.telemetry.endpoint import serve_metrics
from ec_recommend.platform.telemetry.logging import ContextFilter, JsonFormatter
from tests.integration.gateway.conftest import GatewayUnderTest, gateway_config, running_gateway
from tests.telemetry_support import parent_id, span_id, trace_id

pytestmark = pytest.mark.asyncio

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
GET_PRODUCT = "ecommerce.product.ProductService/GetProduct"
CREATE_PRODUCT = "ecommerce.product.ProductService/CreateProduct"

NEW_PRODUCT = {
    "name": "Kettle",
    "description": "A gooseneck kettle",
    "base_price": {"amount": 4280, "currency": "JPY"},
    "stock_quantity": 5,
}


def in_trace(finished: tuple[ReadableSpan, ...], trace: int) -> list[ReadableSpan]:
    return [span for span in finished if trace_id(span) == trace]


def of_kind(spans: list[ReadableSpan], name: str, kind: SpanKind) -> ReadableSpan:
    matches = [span for span in spans if span.name == name and span.kind is kind]
    assert len(matches) == 1, [(s.name, s.kind) for s in spans]
    return matches[0]


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """JSON lines of every log record, as a process configured for JSON writes them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter("test"))
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(previous)


async def create_product(gateway: GatewayUnderTest) -> str:
    created = await gateway.http.post(
        "/api/v1/products", json=NEW_PRODUCT, headers=gateway.auth("seller-a")
    )
    assert created.status == 201, await created.text()
    product_id: str = (await created.json())["id"]
    return product_id


async def test_a_client_trace_runs_through_gateway_and_service(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    async with running_gateway(gateway_config(tmp_path)) as gateway:
        product_id = await create_product(gateway)
        spans.clear()
        response = await gateway.http.get(
            f"/api/v1/products/{product_id}",
            headers={"traceparent": TRACEPARENT, "X-Request-ID": "req-trace-1"},
        )
        assert response.status == 200

    finished = in_trace(spans.get_finished_spans(), int(CLIENT_TRACE, 16))
    http = of_kind(finished, "GET /api/v1/products/{product_id}", SpanKind.SERVER)
    client = of_kind(finished, GET_PRODUCT, SpanKind.CLIENT)
    server = of_kind(finished, GET_PRODUCT, SpanKind.SERVER)
    assert parent_id(http) == int(CLIENT_SPAN, 16)
    assert parent_id(client) == span_id(http)
    assert parent_id(server) == span_id(client)
    assert http.attributes is not None and server.attributes is not None
    assert http.attributes["http.route"] == "/api/v1/products/{product_id}"
    assert http.attributes["http.response.status_code"] == 200
    assert http.attributes["ec.request_id"] == "req-trace-1"
    assert server.attributes["product.id"] == product_id
    assert server.attributes["rpc.grpc.status_code"] == 0
    # a traced read goes through SQLAlchemy, whose events give the statement its span
    reads = [span for span in finished if parent_id(span) == span_id(server)]
    assert [span.name for span in reads] == ["SELECT product"]


async def test_writes_show_user_and_database_spans_under_the_rpc(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    async with running_gateway(gateway_config(tmp_path)) as gateway:
        spans.clear()
        created = await gateway.http.post(
            "/api/v1/products",
            json=NEW_PRODUCT,
            headers={**gateway.auth("seller-a"), "traceparent": TRACEPARENT},
        )
        assert created.status == 201

    finished = in_trace(spans.get_finished_spans(), int(CLIENT_TRACE, 16))
    http = of_kind(finished, "POST /api/v1/products", SpanKind.SERVER)
    server = of_kind(finished, CREATE_PRODUCT, SpanKind.SERVER)
    assert server.attributes is not None
    assert server.attributes["user.id"], "the caller's user id is on the service span"
    assert trace_id(server) == trace_id(http)
    statements = [
        span
        for span in finished
        if span.kind is SpanKind.CLIENT and parent_id(span) == span_id(server)
    ]
    inserts = [span for span in statements if span.name == "INSERT product"]
    assert inserts, [span.name for span in statements]
    assert inserts[0].attributes is not None
    assert inserts[0].attributes["db.system"] == "sqlite"
    assert "?" in str(inserts[0].attributes["db.query.text"]), "placeholders, not values"


async def test_failed_calls_keep_the_trace_and_mark_the_span(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    async with running_gateway(gateway_config(tmp_path)) as gateway:
        spans.clear()
        missing = await gateway.http.get(
            "/api/v1/products/00000000-0000-4000-8000-000000000000",
            headers={"traceparent": TRACEPARENT},
        )
        assert missing.status == 404

    finished = in_trace(spans.get_finished_spans(), int(CLIENT_TRACE, 16))
    server = of_kind(finished, GET_PRODUCT, SpanKind.SERVER)
    client = of_kind(finished, GET_PRODUCT, SpanKind.CLIENT)
    http = of_kind(finished, "GET /api/v1/products/{product_id}", SpanKind.SERVER)
    assert server.attributes is not None and client.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] == 5  # NOT_FOUND
    assert [event.name for event in server.events] == ["exception"]
    assert client.attributes["rpc.grpc.status_code"] == 5
    assert http.attributes is not None
    assert http.attributes["http.response.status_code"] == 404


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample of ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(2))
    return None


async def test_metrics_after_traffic_on_gateway_and_service_endpoints(tmp_path: Path) -> None:
    async with running_gateway(gateway_config(tmp_path)) as gateway:
        product_id = await create_product(gateway)
        for _ in range(3):
            assert (await gateway.http.get(f"/api/v1/products/{product_id}")).status == 200
        missing = "00000000-0000-4000-8000-000000000000"
        assert (await gateway.http.get(f"/api/v1/products/{missing}")).status == 404
        assert (await gateway.http.get("/no/such/path/for/metrics")).status == 404

        scraped = await gateway.http.get("/metrics")
        assert scraped.status == 200
        assert scraped.headers["Content-Type"].startswith("text/plain")
        text = await scraped.text()
        async with (
            serve_metrics("127.0.0.1", 0) as endpoint,
            aiohttp.ClientSession() as session,
            session.get(endpoint.url) as service_scrape,
        ):
            assert service_scrape.status == 200
            service_text = await service_scrape.text()

    ok = sample(
        text,
        "http_request_total",
        service="gateway",
        endpoint="/api/v1/products/{product_id}",
        method="GET",
        status="200",
    )
    assert ok is not None and ok >= 3
    assert sample(text, "http_request_total", endpoint="unmatched", status="404") is not None
    assert product_id not in text and "/no/such/path" not in text, "no raw paths or ids"
    for scrape in (text, service_text):
        calls = sample(
            scrape,
            "grpc_request_duration_seconds_count",
            service="product",
            method="GetProduct",
            status="OK",
        )
        assert calls is not None and calls >= 3
        not_found = sample(
            scrape,
            "grpc_request_duration_seconds_count",
            service="product",
            method="GetProduct",
            status="NOT_FOUND",
        )
        assert not_found is not None and not_found >= 1
        assert sample(scrape, "http_requests_in_flight", service="gateway") is not None
        assert sample(scrape, "db_pool_connections", service="product") is not None


async def test_json_log_lines_carry_the_trace_of_their_request(
    tmp_path: Path, spans: InMemorySpanExporter, json_logs: io.StringIO
) -> None:
    async with running_gateway(gateway_config(tmp_path)) as gateway:
        response = await gateway.http.get(
            "/api/v1/products", headers={"traceparent": TRACEPARENT, "X-Request-ID": "req-log-1"}
        )
        assert response.status == 200

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "ec_recommend.access"]
    assert len(access) == 1
    (line,) = access
    assert line["trace_id"] == CLIENT_TRACE
    assert line["request_id"] == "req-log-1"
    assert line["service"] == "gateway"
    assert line["http_route"] == "/api/v1/products"
    http = of_kind(
        in_trace(spans.get_finished_spans(), int(CLIENT_TRACE, 16)),
        "GET /api/v1/products",
        SpanKind.SERVER,
    )
    assert line["span_id"] == f"{span_id(http):016x}"


async def test_rate_limit_rejections_are_counted_by_tier(tmp_path: Path) -> None:
    async with running_gateway(gateway_config(tmp_path, rate_limit_anonymous=2)) as gateway:
        before = await gateway.http.get("/metrics")
        text = await before.text()
        counted = sample(text, "rate_limit_rejected_total", tier="anonymous") or 0
        refused = sample(text, "http_request_total", endpoint="/api/v1/products", status="429") or 0
        statuses = [(await gateway.http.get("/api/v1/products")).status for _ in range(3)]
        assert statuses == [200, 200, 429]
        after = await (await gateway.http.get("/metrics")).text()
    assert sample(after, "rate_limit_rejected_total", tier="anonymous") == counted + 1
    assert (
        sample(after, "http_request_total", endpoint="/api/v1/products", status="429")
        == refused + 1
    )
