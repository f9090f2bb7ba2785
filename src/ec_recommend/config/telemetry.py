"""Traces, metrics and logs of one process."""

from __future__ import annotations

from dataclasses import dataclass

from ec_recommend.config.values import ConfigError, Section


@dataclass(frozen=True)
class TelemetryConfig:
    """Traces, metrics and logs of one process.

    Spans go out over OTLP/HTTP only when ``otlp_endpoint`` is set (e.g.
    ``http://collector:4318``); without it spans only carry ids (so log
    lines carry trace ids) and record nothing. A service or worker
    process serves ``/metrics`` on ``metrics_port`` (0 = any free port).
    ``log_format`` is ``json``, ``text`` or ``auto`` (text on a terminal).
    With ``consumer_links`` a consumer span starts a new trace linked to the
    producer's instead of continuing it as a child.
    """

    otlp_endpoint: str | None = None
    service_name: str = ""  # empty: named after what the process hosts
    sample_ratio: float = 1.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    log_format: str = "auto"
    consumer_links: bool = False


def telemetry_config(section: Section) -> TelemetryConfig:
    """``telemetry:`` file section and ``EC_*`` variables."""
    log_format = str(section.pick("log_format", "EC_LOG_FORMAT", "auto")).lower()
    if log_format not in ("auto", "json", "text"):
        raise ConfigError(f"telemetry.log_format: expected auto, json or text, got {log_format!r}")
    ratio_text = section.pick("sample_ratio", "EC_TRACE_SAMPLE_RATIO", 1.0)
    try:
        ratio = float(str(ratio_text))
    except ValueError:
        message = f"telemetry.sample_ratio: expected a number, got {ratio_text!r}"
        raise ConfigError(message) from None
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"telemetry.sample_ratio: must be within 0..1, got {ratio}")
    links = str(section.pick("consumer_links", "EC_TRACE_CONSUMER_LINKS", "false")).strip().lower()
    if links not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"telemetry.consumer_links: expected true or false, got {links!r}")
    return TelemetryConfig(
        otlp_endpoint=section.pick("otlp_endpoint", "EC_OTLP_ENDPOINT", None) or None,
        service_name=str(section.pick("service_name", "EC_SERVICE_NAME", "")),
        sample_ratio=ratio,
        metrics_host=str(section.pick("metrics_host", "EC_METRICS_HOST", "127.0.0.1")),
        metrics_port=section.count("metrics_port", "EC_METRICS_PORT", 0, allow_zero=True),
        log_format=log_format,
        consumer_links=links in ("1", "true", "yes", "on"),
    )
