"""Traces, metrics and logs (seed section 8).

``tracing`` (OpenTelemetry API), ``metrics`` (the one aioprometheus module),
``logging`` (JSON/text lines with trace and request ids), the hooks for gRPC
(``rpc``), the mesh policies (``mesh``), HTTP (``http``), events
(``messaging``) and SQL (``database``), ``endpoint`` (``/metrics`` for service
and worker processes) and ``export`` (SDK setup, for process entry points only).
"""
