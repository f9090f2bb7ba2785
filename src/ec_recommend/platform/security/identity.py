"""Which service a piece of code acts as, for the certificate it presents.

A process may host several services (``ec-recommend up``); a call made while
serving a request for ``order`` goes out with order's certificate. The
server sets this per request (``service_identity_middleware``); the host sets
it around each service's start-up (so its background tasks inherit it) and
the consumer runtime around each consumer's worker. Only code outside all of
them (the gateway) presents the client factory's own identity.
"""

from __future__ import annotations

from contextvars import ContextVar

from ec_recommend.platform.rpc.context import VarScope

_acting: ContextVar[str | None] = ContextVar("ec_acting_service", default=None)


def current_actor() -> str | None:
    return _acting.get()


def acting_as(service: str) -> VarScope[str | None]:
    """``with acting_as("order"):`` calls made inside present order's certificate."""
    return VarScope(_acting, service)
