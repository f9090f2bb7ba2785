"""A real ``ec-recommend serve`` process: /metrics on its metrics port, JSON log
lines that carry the trace id a caller sent, spans exported over OTLP/HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.config import Endpoint
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.telemetry.tracing import tracer
from tests.conftest import wait_for

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


async def call_get_product(address: str) -> tuple[str, Exception | None]:
    """One GetProduct call inside a local span; returns that span's trace id."""
    host, _, port = address.rpartition(":")
    async with ClientFactory({"product": [Endpoint(host, int(port))]}, pool_size=1) as clients:
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
        trace_hex, failure = await call_get_product(ready["services"]["product"])
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
            trace_hex, _ = await call_get_product(ready["services"]["product"])
        assert ready["returncode"] == 0, ready["stderr"][-2000:]
        # The batch is flushed when the process stops.
        await wait_for(lambda: collector.exports, timeout=10)
        exported = b"".join(collector.exports)
        assert bytes.fromhex(trace_hex) in exported
        assert b"ecommerce.product.ProductService/GetProduct" in exported
    finally:
        await runner.cleanup()
