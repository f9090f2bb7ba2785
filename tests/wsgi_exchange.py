"""A WSGI exchange with a fast path in front of a stand-in for moto's app:
what the stand-in was handed, and what came back."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

Environ = dict[str, Any]
WsgiApp = Callable[[Environ, Any], Iterable[bytes]]


class Served:
    """``answering(moto)`` serving one request at a time; ``moto`` answers
    ``b"moto"`` and keeps the body it was handed."""

    def __init__(self, answering: Callable[[WsgiApp], WsgiApp]) -> None:
        self.to_moto: list[bytes] = []
        self.status = ""
        self.headers: dict[str, str] = {}
        self._app = answering(self.moto)

    def moto(self, environ: Environ, start_response: Any) -> Iterable[bytes]:
        self.to_moto.append(environ["wsgi.input"].read())
        start_response("418 moto", [])
        return [b"moto"]

    def serve(self, environ: Environ) -> bytes:
        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            self.status, self.headers = status, dict(headers)

        return b"".join(self._app(environ, start_response))


class FormServed(Served):
    """A query-protocol form (SNS, SES) posted to a fast path, signed with
    ``authorization`` (which names the service and region)."""

    def __init__(self, answering: Callable[[WsgiApp], WsgiApp], authorization: str) -> None:
        super().__init__(answering)
        self._authorization = authorization

    def call(self, body: bytes, **extra: str) -> bytes:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/",
            "HTTP_HOST": "127.0.0.1:4566",
            "wsgi.url_scheme": "http",
            "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": self._authorization,
            "wsgi.input": io.BytesIO(body),
            **extra,
        }
        return self.serve(environ)


def signed_for(service: str, region: str) -> str:
    """An ``Authorization`` header as the AWS client signs a call to
    ``service`` in ``region`` (what a fast path reads of it; never verified)."""
    return (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261203/"
        f"{region}/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"
    )
