"""Trace export for process entry points; the only module that imports the SDK.

An entry point (``ec-recommend serve|up``) installs a provider once. With an
OTLP endpoint configured, spans are recorded and batched over OTLP/HTTP by a
background thread that is flushed on exit. Without one, spans still get ids
(so log lines carry trace ids and downstream calls continue the trace) but
record nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.sdk.environment_variables import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

from ec_recommend.config import TelemetryConfig
from ec_recommend.platform.telemetry.tracing import TRACER_NAME
from ec_recommend.platform.telemetry.unrecorded import Unrecorded, spans_unrecorded


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector base URL (or the full URL)."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def build_provider(config: TelemetryConfig, service_name: str) -> TracerProvider:
    """Recording, sampled and exported spans with an endpoint; without one,
    spans that only carry ids (cheap: nothing is recorded that would go nowhere)."""
    # With an endpoint: follow the caller's decision, sample new traces at the ratio.
    sampler = (
        ParentBased(TraceIdRatioBased(config.sample_ratio)) if config.otlp_endpoint else ALWAYS_OFF
    )
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": service_name, "service.namespace": "ec-recommend"}
        ),
        sampler=sampler,
    )
    if config.otlp_endpoint:
        # only then: the exporter and its protobuf modules are ~0.1 s of every
        # process's start on a slow machine, most of which export nothing
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=traces_url(config.otlp_endpoint))
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def unrecorded_spans(config: TelemetryConfig, provider: TracerProvider) -> Unrecorded | None:
    """Which spans of ``build_provider(config, ...)`` surely record nothing.

    Without an endpoint its sampler (ALWAYS_OFF) drops every span; with one,
    ParentBased drops the children of an unsampled parent. None when the
    SDK would do more than make ids for them: disabled (it makes no ids at
    all), or counting the spans it starts (its internal metrics).
    """
    if not isinstance(provider.get_tracer(TRACER_NAME), Tracer):
        return None  # OTEL_SDK_DISABLED: a no-op tracer
    if os.environ.get(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, "").strip().lower() == "true":
        return None
    return Unrecorded(provider.id_generator, every=not config.otlp_endpoint)


@contextmanager
def tracing(config: TelemetryConfig, service_name: str) -> Iterator[TracerProvider]:
    """Install the process's tracer provider; flush and stop it when the block ends."""
    provider = build_provider(config, service_name)
    trace.set_tracer_provider(provider)
    # only if it is the one installed (a process keeps its first provider)
    installed = trace.get_tracer_provider() is provider
    if installed:
        spans_unrecorded(unrecorded_spans(config, provider))
    try:
        yield provider
    finally:
        if installed:
            spans_unrecorded(None)
        provider.shutdown()
