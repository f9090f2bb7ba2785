"""Users' addresses for a batch of emails: one GetUsers for the batch."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.consumers.recipients import Recipients
from ec_recommend.platform.events.consumer import EffectScope

pytestmark = pytest.mark.asyncio


class Users:
    """A UserService stand-in that records what it was asked."""

    def __init__(self, *users: pb_user.User) -> None:
        self.users = {user.id: user for user in users}
        self.asked: list[list[str]] = []

    async def get_users(self, request: pb_user.GetUsersRequest) -> pb_user.GetUsersResponse:
        self.asked.append(list(request.user_ids))
        found = [self.users[i] for i in request.user_ids if i in self.users]
        return pb_user.GetUsersResponse(users=found)


def _user(email: str, *, active: bool = True) -> pb_user.User:
    return pb_user.User(id=str(uuid.uuid4()), email=email, active=active)


async def _addresses(users: Users, user_ids: list[str]) -> list[str | None]:
    """The addresses as a batch's effects ask for them: all at once, in one scope."""
    recipients = Recipients(users)  # type: ignore[arg-type]
    scope = EffectScope(db=None)  # type: ignore[arg-type]
    return list(await asyncio.gather(*(recipients.user_email(i, scope) for i in user_ids)))


async def test_a_batch_s_customers_are_looked_up_in_one_call() -> None:
    hanako, taro, gone = (
        _user("hanako@example.com"),
        _user("taro@example.com"),
        _user("x", active=False),
    )
    users = Users(hanako, taro, gone)
    unknown = str(uuid.uuid4())

    found = await _addresses(users, [hanako.id, "not-an-id", taro.id, hanako.id, gone.id, unknown])

    assert found == [
        "hanako@example.com",
        None,
        "taro@example.com",
        "hanako@example.com",
        None,
        None,
    ]
    # One call; an id that is not one is not asked for (it would fail the call).
    assert users.asked == [[hanako.id, taro.id, gone.id, unknown]]


async def test_past_a_hundred_customers_the_lookup_takes_more_calls() -> None:
    customers = [_user(f"c{n}@example.com") for n in range(130)]
    users = Users(*customers)

    found = await _addresses(users, [c.id for c in customers])

    assert found == [c.email for c in customers]
    assert [len(asked) for asked in users.asked] == [100, 30]
