"""Database telemetry: a CLIENT span per statement and pool use on every scrape.

Statements are traced only inside a recording span (a request, a handled
message, a publish): background polling loops would otherwise start a trace
per poll. Transaction starts are left out: they are the driver's own on
PostgreSQL and say nothing on SQLite. The span carries the SQL text with its placeholders, never the
parameter values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from ec_recommend.platform.telemetry.metrics import Metrics, process_metrics
from ec_recommend.platform.telemetry.tracing import record_failure, tracer

_SPAN_KEY: Final = "ec_span"
_SYSTEMS: Final = {"postgresql": "postgresql", "sqlite": "sqlite"}


def instrument_engine(
    engine: AsyncEngine | Engine,
    service: str,
    metrics: Metrics | None = None,
    *,
    pool_gauge: bool = True,
) -> Callable[[], None]:
    """Trace ``engine``'s statements and report its pool; returns the undo function.

    ``pool_gauge=False`` for a service's secondary engine (its inline reader),
    or a view of a shared engine whose pool is reported once (``report_pool``).
    """
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    system = _SYSTEMS.get(sync_engine.dialect.name, sync_engine.dialect.name)

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if context is None or not trace.get_current_span().is_recording():
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        if operation == "BEGIN":
            # SQLite's explicit BEGIN (PostgreSQL's is the driver's, untraced): noise.
            return
        span = tracer.start_span(
            f"{operation} {service}",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": system,
                "db.namespace": service,
                "db.operation.name": operation,
                "db.query.text": statement,
            },
        )
        setattr(context, _SPAN_KEY, span)

    def after(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        span = getattr(context, _SPAN_KEY, None)
        if span is not None:
            span.end()
            setattr(context, _SPAN_KEY, None)

    def failed(exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, _SPAN_KEY, None)
        if span is not None:
            record_failure(span, exception_context.original_exception)
            span.end()
            setattr(exception_context.execution_context, _SPAN_KEY, None)

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", failed)

    def unlisten() -> None:
        event.remove(sync_engine, "before_cursor_execute", before)
        event.remove(sync_engine, "after_cursor_execute", after)
        event.remove(sync_engine, "handle_error", failed)

    if not pool_gauge:
        return unlisten

    remove_collector = report_pool(engine, service, metrics)

    def undo() -> None:
        remove_collector()
        unlisten()

    return undo


def report_pool(
    engine: AsyncEngine | Engine, label: str, metrics: Metrics | None = None
) -> Callable[[], None]:
    """Report ``engine``'s pool use (as ``service=label``) on every scrape; returns the undo."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    recorder = metrics or process_metrics()
    pool = sync_engine.pool

    def report(target: Metrics) -> None:
        size = pool.size() if isinstance(pool, QueuePool) else 1
        in_use = pool.checkedout() if isinstance(pool, QueuePool) else 0
        target.db_pool(label, in_use, size)

    return recorder.on_scrape(report)
