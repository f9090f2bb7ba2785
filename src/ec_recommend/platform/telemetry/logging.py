"""Log lines that lead to their trace: JSON for machines, text for a terminal.

Every record gets ``service`` (the hosted service or consumer whose code
logged it, else the process's name), ``trace_id``/``span_id`` of the current
span and the ``request_id`` of the current call. JSON lines carry the
timestamp, level, logger, message, those fields, any ``extra=`` fields and a
formatted exception.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any, Final

import orjson

from ec_recommend.platform.rpc.context import current_call
from ec_recommend.platform.telemetry.tracing import current_component, current_ids

_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "service",
    "trace_id",
    "span_id",
    "request_id",
}


class ContextFilter(logging.Filter):
    """Adds service, trace id, span id and request id to each record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_ids()
        record.trace_id, record.span_id = ids if ids is not None else ("", "")
        # An explicit ``extra={"request_id": ...}`` wins over the call's.
        if not getattr(record, "request_id", ""):
            record.request_id = current_call().request_id
        record.service = current_component.get() or self.service
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": getattr(record, "service", ""),
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": getattr(record, "trace_id", ""),
            "span_id": getattr(record, "span_id", ""),
            "request_id": getattr(record, "request_id", ""),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = record.exc_text
        return orjson.dumps(payload, default=str).decode()


class TextFormatter(logging.Formatter):
    """``12:00:01.234 INFO  product  ec_recommend.x: message  trace=… req=…``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(service)-10s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created).astimezone()
        return moment.strftime("%H:%M:%S.") + f"{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = []
        trace_id = getattr(record, "trace_id", "")
        request_id = getattr(record, "request_id", "")
        if trace_id:
            tags.append(f"trace={trace_id}")
        if request_id:
            tags.append(f"req={request_id}")
        if not tags:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first}  {' '.join(tags)}{newline}{rest}"


def configure_logging(
    level: str,
    *,
    log_format: str = "auto",
    service: str = "ec-recommend",
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every logger's records to ``stream`` (stderr) in ``log_format``.

    ``auto`` is text when the stream is a terminal and JSON otherwise.
    """
    out = stream if stream is not None else sys.stderr
    if log_format == "auto":
        log_format = "text" if out.isatty() else "json"
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter(service))
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
