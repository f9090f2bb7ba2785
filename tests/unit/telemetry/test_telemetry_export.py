"""What the entry point's provider records: everything with an endpoint, only ids without."""

from __future__ import annotations

from ec_recommend.config import TelemetryConfig
from ec_recommend.platform.telemetry.export import build_provider, traces_url


def test_without_an_endpoint_spans_carry_ids_but_record_nothing() -> None:
    provider = build_provider(TelemetryConfig(), "product")
    with provider.get_tracer("t").start_as_current_span("call") as span:
        assert not span.is_recording()
        assert span.get_span_context().is_valid
    provider.shutdown()


def test_with_an_endpoint_spans_are_recorded_for_export() -> None:
    provider = build_provider(TelemetryConfig(otlp_endpoint="http://127.0.0.1:9"), "product")
    span = provider.get_tracer("t").start_span("call")
    assert span.is_recording()  # never ended, so nothing is sent anywhere
    assert provider.resource.attributes["service.name"] == "product"
    provider.shutdown()


def test_traces_url_accepts_a_base_or_the_full_url() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"
