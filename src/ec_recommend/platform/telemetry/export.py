"""Trace export for process entry points; the only module that imports the SDK.

An entry point (``ec-recommend serve|up``) installs a provider once. Spans are
always created, so log lines carry trace ids; they leave the process only
when an OTLP endpoint is configured, batched over OTLP/HTTP by a background
thread that is flushed on exit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from ec_recommend.config import TelemetryConfig


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector base URL (or the full URL)."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def build_provider(config: TelemetryConfig, service_name: str) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": service_name, "service.namespace": "ec-recommend"}
        ),
        # Follow the caller's decision; sample new traces at the configured ratio.
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
    )
    if config.otlp_endpoint:
        exporter = OTLPSpanExporter(endpoint=traces_url(config.otlp_endpoint))
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@contextmanager
def tracing(config: TelemetryConfig, service_name: str) -> Iterator[TracerProvider]:
    """Install the process's tracer provider; flush and stop it when the block ends."""
    provider = build_provider(config, service_name)
    trace.set_tracer_provider(provider)
    try:
        yield provider
    finally:
        provider.shutdown()
