"""Who may call what: the allow-list per service and method, on the server.

The caller's service identity comes from its verified client certificate.
A method listed under ``allowed_callers`` in mesh.yaml (or a service-wide
``"*"`` entry) admits only the services named there; anyone else, including
a caller without a certificate in PERMISSIVE mode, gets PERMISSION_DENIED.
With TLS disabled there are no identities and the allow-list is not applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ec_recommend.config import TlsConfig
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.mesh import ServicePolicy
from ec_recommend.platform.rpc.server import Handler, ServerCall, ServerMiddleware
from ec_recommend.platform.security.identity import acting_as
from ec_recommend.platform.security.tls import peer_service

_caller: ContextVar[str | None] = ContextVar("ec_caller_service", default=None)


def caller_service() -> str | None:
    """The service identity of the peer of the call being served (if any)."""
    return _caller.get()


@contextmanager
def _calling(caller: str | None) -> Iterator[None]:
    token = _caller.set(caller)
    try:
        yield
    finally:
        _caller.reset(token)


def service_identity_middleware(
    service: str, policy: ServicePolicy, tls: TlsConfig
) -> ServerMiddleware:
    """Enforce the allow-list and make the handler's own calls act as ``service``."""

    async def middleware(call: ServerCall, call_next: Handler) -> None:
        caller = peer_service(call.peer_cert) if tls.enabled else None
        if tls.enabled:
            method = call.method.rsplit("/", 1)[-1]
            allowed = policy.callers_of(method)
            if allowed is not None and caller not in allowed:
                who = caller or "a caller without a certificate"
                raise errors.PermissionDenied(
                    f"{who} may not call {service}.{method}",
                    reason="caller_not_allowed",
                    caller=caller or "",
                )
        with acting_as(service), _calling(caller):
            await call_next()

    return middleware
