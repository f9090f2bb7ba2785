"""Who may call what: the allow-list per service and method, on the server.

The caller's service identity comes from its verified client certificate
(over a socket) or from the certificate it would present (in process): see
``ServerCall.caller``. A method listed under ``allowed_callers`` in mesh.yaml (or a service-wide
``"*"`` entry) admits only the services named there; anyone else, including
a caller without a certificate in PERMISSIVE mode, gets PERMISSION_DENIED.
With TLS disabled there are no identities and the allow-list is not applied.
"""

from __future__ import annotations

from contextvars import ContextVar

from ec_recommend.config import TlsConfig
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import VarScope
from ec_recommend.platform.rpc.mesh import ServicePolicy
from ec_recommend.platform.rpc.server import Handler, ServerCall, ServerMiddleware
from ec_recommend.platform.security.identity import acting_as

_caller: ContextVar[str | None] = ContextVar("ec_caller_service", default=None)


def caller_service() -> str | None:
    """The service identity of the peer of the call being served (if any)."""
    return _caller.get()


def service_identity_middleware(
    service: str, policy: ServicePolicy, tls: TlsConfig
) -> ServerMiddleware:
    """Enforce the allow-list and make the handler's own calls act as ``service``."""

    enabled = tls.enabled
    # route -> who may call it, resolved on the first call of each route
    allowed_by_route: dict[str, frozenset[str] | None] = {}

    async def middleware(call: ServerCall, call_next: Handler) -> None:
        caller = call.caller if enabled else None
        if enabled:
            route = call.method
            if route in allowed_by_route:
                allowed = allowed_by_route[route]
            else:
                allowed = allowed_by_route[route] = policy.callers_of(route.rsplit("/", 1)[-1])
            if allowed is not None and caller not in allowed:
                method = route.rsplit("/", 1)[-1]
                who = caller or "a caller without a certificate"
                raise errors.PermissionDenied(
                    f"{who} may not call {service}.{method}",
                    reason="caller_not_allowed",
                    caller=caller or "",
                )
        with acting_as(service), VarScope(_caller, caller):
            await call_next()

    return middleware
