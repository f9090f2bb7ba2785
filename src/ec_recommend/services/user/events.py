"""User events, recorded in the outbox inside the unit of work that changes
the user (ARCHITECTURE section 5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend.platform.events.outbox import record_event
from ec_recommend.platform.storage import UnitOfWork

SOURCE = "user-service"


async def user_created(
    uow: UnitOfWork, *, user_id: str, subject: str, email: str, display_name: str
) -> None:
    data = pb.UserCreated(
        user_id=user_id, cognito_user_id=subject, email=email, display_name=display_name
    )
    await record_event(uow, "user.created", data, source=SOURCE)


async def user_updated(uow: UnitOfWork, user: Any, changed: Sequence[str]) -> None:
    """``user`` is the users row after the change."""
    data = pb.UserUpdated(
        user_id=user.id,
        email=user.email,
        phone_number=user.phone_number,
        active=bool(user.active),
        changed_fields=sorted(changed),
    )
    await record_event(uow, "user.updated", data, source=SOURCE)
