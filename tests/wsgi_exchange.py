"""A WSGI exchange with a fast path in front of a stand-in for moto's app:
what the stand-in was handed, and what came back."""

from __future__ import annotations

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
