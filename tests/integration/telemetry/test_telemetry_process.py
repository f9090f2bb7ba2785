"""A real ``ec-recommend serve`` process: /metrics on its metrics port, JSON log
lines that carry the trace id a caller sent, spans exported over OTLP/HTTP."""

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
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend._gen.ecommerce import order as pb_order
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Endpoint
from ec_recommend.platform import errors
from ec_recommend.platform.events.aws import aws_client, queue_url
from ec_recommend.platform.events.envelope import encode, new_event
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.security.call_token import CallSigner, data_dir_key
from ec_recommend.platform.telemetry.tracing import trace_headers, tracer
from ec_recommend.runtime.local_aws import LocalAws
from tests.conftest import events_on, wait_for

pytestmark = pytest.mark.asyncio

MISSING = "00000000-0000-4000-8000-000000000000"


@asynccontextmanager
async def serve(tmp_path: Path, *names: str, **env: str) -> AsyncIterator[dict[str, Any]]:
    """Run ``ec-recommend serve`` until the block ends; yields its ready line and stderr."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ec_recommend.cli",
        "serve",
        *names,
        "--data-dir",
        str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "EC_LOG_FORMAT": "json",
            "EC_METRICS_PORT": "0",
            "EC_DRAIN_TIMEOUT": "2",
            **env,
        },
    )
    assert child.stdout is not None and child.stderr is not None
    state: dict[str, Any] = {}
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line, (await child.stderr.read()).decode()[-2000:]
        state.update(json.loads(line))
        yield state
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(child.communicate(), 30)
        state["stderr"] = stderr.decode()
        state["returncode"] = child.returncode


async def call_get_product(address: str, data_dir: Path) -> tuple[str, Exception | None]:
    """One GetProduct call inside a local span; returns that span's trace id.

    Signed with the key the process keeps in its data dir, as a process
    sharing that data dir would."""
    host, _, port = address.rpartition(":")
    signer = CallSigner(data_dir_key(data_dir))
    endpoints = {"product": [Endpoint(host, int(port))]}
    async with ClientFactory(endpoints, pool_size=1, signer=signer) as clients:
        stub = clients.stub(pb.ProductServiceStub, "product")
        with tracer.start_as_current_span("test caller") as span:
            trace_hex = format(span.get_span_context().trace_id, "032x")
            try:
                await stub.get_product(pb.GetProductRequest(product_id=MISSING))
            except errors.NotFound as exc:
                return trace_hex, exc
    return trace_hex, None


async def test_a_service_process_serves_metrics_and_logs_json_with_trace_ids(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    async with serve(tmp_path, "product", EC_LOG_LEVEL="DEBUG") as ready:
        trace_hex, failure = await call_get_product(ready["services"]["product"], tmp_path / "data")
        assert isinstance(failure, errors.NotFound)
        async with aiohttp.ClientSession() as session, session.get(ready["metrics_url"]) as got:
            assert got.status == 200
            text = await got.text()
    assert ready["returncode"] == 0, ready["stderr"][-2000:]

    assert re.search(
        r'^grpc_request_duration_seconds_count\{method="GetProduct",service="product",'
        r'status="NOT_FOUND"\} 1(\.0)?$',
        text,
        re.MULTILINE,
    ), text
    assert MISSING not in text

    lines = [json.loads(line) for line in ready["stderr"].splitlines() if line.startswith("{")]
    assert lines, ready["stderr"][-2000:]
    assert all({"timestamp", "level", "service", "trace_id", "span_id"} <= set(x) for x in lines)
    traced = [line for line in lines if line["trace_id"] == trace_hex]
    assert traced, "a log line of the call carries the caller's trace id"
    assert {line["service"] for line in traced} == {"product"}


class Collector:
    """A stand-in OTLP/HTTP collector: counts the trace exports it receives."""

    def __init__(self) -> None:
        self.exports: list[bytes] = []

    async def traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        self.exports.append(await request.read())
        return web.Response(body=b"", content_type="application/x-protobuf")


async def test_spans_are_exported_over_otlp_when_an_endpoint_is_configured(
    tmp_path: Path,
) -> None:
    collector = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", collector.traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with serve(tmp_path, "product", EC_OTLP_ENDPOINT=f"http://127.0.0.1:{port}") as ready:
            trace_hex, _ = await call_get_product(ready["services"]["product"], tmp_path / "data")
        assert ready["returncode"] == 0, ready["stderr"][-2000:]
        # The batch is flushed when the process stops.
        await wait_for(lambda: collector.exports, timeout=10)
        exported = b"".join(collector.exports)
        assert bytes.fromhex(trace_hex) in exported
        assert b"ecommerce.product.ProductService/GetProduct" in exported
    finally:
        await runner.cleanup()


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if match and labels.items() <= dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))).items():
            return float(match.group(2))
    return None


async def test_a_worker_process_reports_queue_metrics_and_continues_the_trace(
    tmp_path: Path, local_aws: LocalAws, spans: InMemorySpanExporter
) -> None:
    events = events_on(
        local_aws,
    )
    await provision(events, load_topology())
    event = new_event(
        "order.created",
        pb_events.OrderCreated(order=pb_order.Order(id=str(uuid.uuid4()))),
        source="order",
    )
    with tracer.start_as_current_span("test producer"):
        headers = trace_headers()
    async with (
        serve(
            tmp_path,
            "inventory",
            EC_AWS_ENDPOINT_URL=local_aws.endpoint_url,
            EC_AWS_REGION=local_aws.region,
            EC_EVENTS_PREFIX=events.name_prefix,
            EC_CONSUMER_WAIT_SECONDS="1",
            EC_LOG_LEVEL="DEBUG",
            # where its clients would call; order.created needs neither
            EC_ENDPOINTS_ORDER="127.0.0.1:9",
            EC_ENDPOINTS_PRODUCT="127.0.0.1:9",
        ) as ready,
        aws_client("sqs", events) as sqs,
        aiohttp.ClientSession() as session,
    ):
        await sqs.send_message(
            QueueUrl=await queue_url(sqs, events, "order-processing-queue"),
            MessageBody=encode(event),
            MessageAttributes={
                key: {"DataType": "String", "StringValue": value}
                for key, value in {"type": event.type, **headers}.items()
            },
        )
        text = ""

        async def handled_once() -> bool:
            nonlocal text
            async with session.get(ready["metrics_url"]) as response:
                text = await response.text()
            queue = "order-processing-queue"
            return sample(text, "queue_message_processed_total", queue=queue) == 1

        await wait_for(handled_once, timeout=30, interval=0.2)
    assert ready["returncode"] == 0, ready["stderr"][-2000:]
    # inventory has no handler for order.created (sent here past the queue's filter)
    assert sample(text, "queue_message_processed_total", status="ignored") == 1, text
    lag = sample(text, "queue_consumer_lag_seconds", queue="order-processing-queue")
    assert lag is not None and 0 <= lag < 30
    assert sample(text, "queue_dlq_messages", queue="order-processing-dlq") == 0
    assert sample(text, "db_pool_connections", service="inventory") is not None
    # its log lines carry the producer's trace id, under the consumer's name
    trace_hex = headers["traceparent"].split("-")[1]
    lines = [json.loads(line) for line in ready["stderr"].splitlines() if line.startswith("{")]
    traced = [line for line in lines if line["trace_id"] == trace_hex]
    assert traced and {line["service"] for line in traced} == {"inventory"}
