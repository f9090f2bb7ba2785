"""What the broker's fast answers to query-protocol calls share.

SNS and SES speak the query protocol: a form body naming its ``Action`` and
``Version``, answered with XML. ``moto_sns_fast`` (the relays' PublishBatch)
and ``moto_ses_fast`` (the email consumers' SendBulkTemplatedEmail) each
answer one action of one service from moto's backend; everything else, and
any request they cannot answer exactly as moto would (``ToMoto``), goes on
to moto's app with its body intact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from ec_recommend.runtime.broker_calls import action_of, service_of
from ec_recommend.runtime.moto_fast import (
    Environ,
    StartResponse,
    ToMoto,
    WsgiApp,
    read_body,
)

_FORM = "application/x-www-form-urlencoded"
# The XML answer to a form, given the request, its body and the request id.
Answer = Callable[[Environ, bytes, str], bytes]


def answering_form(
    service: str, action: str, answer: Answer, request_id: Callable[[], str]
) -> Callable[[WsgiApp], WsgiApp]:
    """Wrap an app so that ``service``'s ``action``, posted as a form, is
    answered by ``answer`` unless it raises ``ToMoto``."""

    def answering(app: WsgiApp) -> WsgiApp:
        def serve(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            if (
                "HTTP_X_AMZ_TARGET" in environ
                or environ.get("QUERY_STRING")
                or not str(environ.get("CONTENT_TYPE", "")).startswith(_FORM)
                or service_of(environ) != service
            ):
                return app(environ, start_response)
            body = read_body(environ)
            if action_of(environ, body) != action:  # found without parsing the form
                return app(environ, start_response)
            answered_as = request_id()
            try:
                payload = answer(environ, body, answered_as)
            except ToMoto:
                return app(environ, start_response)
            start_response(
                "200 OK",
                [
                    ("Content-Type", "text/xml"),
                    ("Content-Length", str(len(payload))),
                    ("x-amzn-RequestId", answered_as),
                    ("server", "amazon.com"),
                ],
            )
            return [payload]

        return serve

    return answering


def parse_form(body: bytes, action: str, version: str) -> dict[str, str]:
    """The form's fields but ``Action`` and ``Version``; ``ToMoto`` unless it
    is a well-formed form for ``action`` of ``version`` with no field repeated
    or blank (moto's to judge)."""
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise ToMoto from None
    form = dict(fields)
    if len(form) != len(fields) or any(value == "" for value in form.values()):
        raise ToMoto
    if form.pop("Action", None) != action or form.pop("Version", None) != version:
        raise ToMoto
    return form


def numbered(items: dict[int, Any]) -> bool:
    """Numbered 1, 2, ... with no gap (the query protocol's lists)."""
    return sorted(items) == list(range(1, len(items) + 1))


def members(name: str, items: list[dict[str, Any]], fields: tuple[str, ...]) -> str:
    """A list as moto's XML serializer writes it: ``<name/>`` when empty."""
    if not items:
        return f"<{name}/>"
    written = "".join(
        "<member>"
        + "".join(f"<{field}>{_text(item[field])}</{field}>" for field in fields if field in item)
        + "</member>"
        for item in items
    )
    return f"<{name}>{written}</{name}>"


def response_metadata(request_id: str) -> str:
    return f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))
