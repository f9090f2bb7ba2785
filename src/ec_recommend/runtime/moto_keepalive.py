"""HTTP/1.1 keep-alive for moto's werkzeug server (the local broker).

Werkzeug's development server answers every request with ``Connection:
close``: after a response it discards whatever is left to read on the socket,
which would swallow a kept-alive client's next request. So every aiobotocore
call to the local broker opened a TCP connection (1–2 ms of client CPU).

This handler keeps connections open instead: it reads a request's unread
body by its length (``Content-Length``, or to the end of a chunked body),
never past it, hides the socket from werkzeug's discard-all drain, and
closes only when the client asks (or sent HTTP/1.0) or a response broke
off. The server is threaded, so an idle kept-alive connection holds a thread,
not the server.
"""

from __future__ import annotations

import os
import socket
from contextlib import suppress
from typing import Any

from werkzeug.wsgi import LimitedStream


class _NeverReadable:
    """A file descriptor with nothing to read, ever (a pipe whose writer stays open)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()

    def fileno(self) -> int:
        return self._read


_never_readable: _NeverReadable | None = None


def keep_alive_handler(base: type[Any]) -> type[Any]:
    """A subclass of werkzeug handler ``base`` that keeps connections alive."""

    class KeepAliveRequestHandler(base):  # type: ignore[valid-type,misc]
        protocol_version = "HTTP/1.1"
        _socket: Any = None  # the real socket while werkzeug sees ``_never_readable``
        _body: Any = None  # the request body stream, to read what the app left

        def setup(self) -> None:
            super().setup()
            # werkzeug writes a response's headers and body separately; on a
            # kept-alive connection Nagle would hold the body back until the
            # client's delayed ACK of the headers (~40 ms a call).
            with suppress(OSError):
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def make_environ(self) -> dict[str, Any]:
            environ: dict[str, Any] = super().make_environ()
            if not environ.get("wsgi.input_terminated"):  # a chunked body ends by itself
                length = int(environ.get("CONTENT_LENGTH") or 0)
                environ["wsgi.input"] = LimitedStream(self.rfile, max(length, 0))
                environ["wsgi.input_terminated"] = True
            self._body = environ["wsgi.input"]
            # From here on werkzeug only uses the socket to drain it after the
            # response, which would eat the next request: show it nothing.
            self._socket = getattr(self, "connection")  # noqa: B009 (typed by base)
            self.connection = _never_readable
            return environ

        def run_wsgi(self) -> None:
            self._socket = None
            try:
                super().run_wsgi()
            finally:
                if self._socket is not None:
                    self.connection = self._socket
            try:
                while self._body.read(65536):
                    pass  # what the application left of the body, and no more
            except Exception:
                self.close_connection = True

        def send_header(self, keyword: str, value: str) -> None:
            unasked = not self.close_connection  # the client did not ask to close
            if keyword.lower() == "connection" and value.lower() == "close" and unasked:
                return  # werkzeug's unconditional close
            super().send_header(keyword, value)

    return KeepAliveRequestHandler


def keep_connections_alive() -> bool:
    """Make ``moto.server`` serve with keep-alive; False if moto's server is not as expected."""
    global _never_readable
    import moto.server

    base = getattr(moto.server, "MotoRequestHandler", None)
    if base is None:
        return False
    _never_readable = _NeverReadable()
    moto.server.MotoRequestHandler = keep_alive_handler(base)  # type: ignore[attr-defined]
    return True
