"""What a call carries across hops: identity, request id, idempotency key,
deadline. Servers set it from metadata; clients forward it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from grpclib.metadata import Deadline

USER_ID = "x-user-id"
USER_EMAIL = "x-user-email"
USER_ROLES = "x-user-roles"
SELLER_ID = "x-seller-id"
REQUEST_ID = "x-request-id"
IDEMPOTENCY_KEY = "idempotency-key"


@dataclass(frozen=True)
class Identity:
    """The end user on whose behalf a call is made (the seed's AuthContext)."""

    user_id: str
    email: str = ""
    roles: frozenset[str] = frozenset()
    seller_id: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_seller(self) -> bool:
        return "seller" in self.roles and bool(self.seller_id)


@dataclass(frozen=True)
class CallContext:
    identity: Identity | None = None
    request_id: str = ""
    idempotency_key: str = ""
    deadline: Deadline | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline.time_remaining()

    def to_metadata(self) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        if self.identity is not None:
            items.append((USER_ID, self.identity.user_id))
            if self.identity.email:
                items.append((USER_EMAIL, self.identity.email))
            if self.identity.roles:
                items.append((USER_ROLES, ",".join(sorted(self.identity.roles))))
            if self.identity.seller_id:
                items.append((SELLER_ID, self.identity.seller_id))
        if self.request_id:
            items.append((REQUEST_ID, self.request_id))
        if self.idempotency_key:
            items.append((IDEMPOTENCY_KEY, self.idempotency_key))
        items.extend(self.extra.items())
        return items

    @classmethod
    def from_metadata(
        cls,
        metadata: Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]],
        deadline: Deadline | None = None,
    ) -> CallContext:
        pairs = metadata.items() if isinstance(metadata, Mapping) else metadata
        values = {k: v for k, v in pairs if isinstance(v, str)}
        identity = None
        if values.get(USER_ID):
            roles = frozenset(r for r in values.get(USER_ROLES, "").split(",") if r)
            identity = Identity(
                user_id=values[USER_ID],
                email=values.get(USER_EMAIL, ""),
                roles=roles,
                seller_id=values.get(SELLER_ID, ""),
            )
        return cls(
            identity=identity,
            request_id=values.get(REQUEST_ID, ""),
            idempotency_key=values.get(IDEMPOTENCY_KEY, ""),
            deadline=deadline,
        )


_NO_CALL = CallContext()
_current: ContextVar[CallContext] = ContextVar("ec_call_context", default=_NO_CALL)


def current_call() -> CallContext:
    return _current.get()


@contextmanager
def call_scope(context: CallContext) -> Iterator[CallContext]:
    """Make ``context`` the current call for the code inside the block."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
