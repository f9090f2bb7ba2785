"""Which service a piece of code acts as, for the certificate it presents.

A process may host several services (``ec-recommend up``); a call made while
serving a request for ``order`` goes out with order's certificate. The
server sets this per request (``RpcServer`` middleware from
``security.acting_as_middleware``); code outside any request (the gateway,
event consumers) uses the client factory's own identity or ``acting_as``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_acting: ContextVar[str | None] = ContextVar("ec_acting_service", default=None)


def current_actor() -> str | None:
    return _acting.get()


@contextmanager
def acting_as(service: str) -> Iterator[None]:
    token = _acting.set(service)
    try:
        yield
    finally:
        _acting.reset(token)
