"""Who is calling, and may they: the caller's identity and the allow-list, on the server.

Every call must say who makes it. The calling service is its verified client
certificate under mTLS (over a socket, or the one it would present in
process: ``ServerCall.caller``), else the service named by the call's signed
identity (``call_token.py``); the end user, if any, is only ever the one in
that signed identity. A call with neither, or with a forged or stale token,
is UNAUTHENTICATED - so reaching a service port is not enough to act as
anyone, with or without mTLS. A method listed under ``allowed_callers`` in
mesh.yaml (or a service-wide ``"*"`` entry) admits, under mTLS, only the
services named there by their certificates; anyone else, including a
PERMISSIVE caller without a certificate, gets PERMISSION_DENIED. Without
mTLS every caller still needs the signed identity, which only processes
holding the key can make.
"""

from __future__ import annotations

from contextvars import ContextVar

from opentelemetry import trace

from ec_recommend.config import TlsConfig
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import VarScope, call_scope, current_call
from ec_recommend.platform.rpc.mesh import ServicePolicy
from ec_recommend.platform.rpc.server import Handler, ServerCall, ServerMiddleware
from ec_recommend.platform.security.call_token import METADATA_KEY as CALL_TOKEN
from ec_recommend.platform.security.call_token import CallSigner
from ec_recommend.platform.security.identity import acting_as

_caller: ContextVar[str | None] = ContextVar("ec_caller_service", default=None)


def caller_service() -> str | None:
    """The service identity of the peer of the call being served (if any)."""
    return _caller.get()


def _token_of(metadata: object) -> str | None:
    get = getattr(metadata, "get", None)  # a mapping (MultiDict: the first value)
    if get is not None:
        value = get(CALL_TOKEN)
        return value if isinstance(value, str) else None
    for name, value in metadata or ():  # type: ignore[attr-defined]
        if name == CALL_TOKEN and isinstance(value, str):
            return value
    return None


def service_identity_middleware(
    service: str, policy: ServicePolicy, tls: TlsConfig, signer: CallSigner
) -> ServerMiddleware:
    """Authenticate the caller, enforce the allow-list, and make the handler's
    own calls act as ``service``."""

    enabled = tls.enabled
    # route -> who may call it, resolved on the first call of each route
    allowed_by_route: dict[str, frozenset[str] | None] = {}

    async def middleware(call: ServerCall, call_next: Handler) -> None:
        token = _token_of(call.stream.metadata)
        signed = None if token is None else signer.verify(token)
        certified = call.caller if enabled else None
        caller = certified or (None if signed is None else signed.service)
        if caller is None:
            raise errors.Unauthenticated(
                f"{service} needs the caller's identity: a client certificate or a signed call"
            )
        if enabled:  # the allow-list names certificates
            route = call.method
            if route in allowed_by_route:
                allowed = allowed_by_route[route]
            else:
                allowed = allowed_by_route[route] = policy.callers_of(route.rsplit("/", 1)[-1])
            if allowed is not None and certified not in allowed:
                method = route.rsplit("/", 1)[-1]
                who = certified or "a caller without a certificate"
                raise errors.PermissionDenied(
                    f"{who} may not call {service}.{method}",
                    reason="caller_not_allowed",
                    caller=certified or "",
                )
        identity = None if signed is None else signed.identity
        if identity is not None:  # on the call's SERVER span (telemetry runs outside this)
            trace.get_current_span().set_attribute("user.id", identity.user_id)
        with acting_as(service), VarScope(_caller, caller):
            call_context = current_call()
            if identity is call_context.identity:  # None for a service's own calls
                await call_next()
                return
            with call_scope(call_context.with_identity(identity)):
                await call_next()

    return middleware
