"""UserService over real gRPC on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ec_recommend._gen.ecommerce import user as pb
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def stub(services) -> AsyncIterator[pb.UserServiceStub]:
    async with services("user") as hosted:
        yield hosted.clients.stub(pb.UserServiceStub, "user")


def signup(subject: str = "sub-1", email: str = "hanako@example.com") -> pb.CreateUserRequest:
    return pb.CreateUserRequest(cognito_user_id=subject, email=email, display_name="Hanako")


def as_user(user_id: str, *roles: str) -> CallContext:
    return CallContext(identity=Identity(user_id=user_id, roles=frozenset(roles or {"customer"})))


async def test_create_is_idempotent_on_cognito_subject(stub) -> None:
    first = await stub.create_user(signup())
    again = await stub.create_user(signup())
    assert first.id == again.id and first.active
    by_subject = await stub.get_user(pb.GetUserRequest(cognito_user_id="sub-1"))
    assert by_subject.id == first.id


async def test_concurrent_creates_for_one_subject_make_one_user(stub) -> None:
    users = await asyncio.gather(*(stub.create_user(signup("sub-race")) for _ in range(10)))
    assert len({u.id for u in users}) == 1


async def test_email_belongs_to_one_account(stub) -> None:
    await stub.create_user(signup("sub-1", "same@example.com"))
    with pytest.raises(errors.AlreadyExists):
        await stub.create_user(signup("sub-2", "same@example.com"))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CreateUserRequest(cognito_user_id="s", email="nope"), "email"),
        (pb.CreateUserRequest(cognito_user_id="", email="a@example.com"), "cognito_user_id"),
        (
            pb.CreateUserRequest(cognito_user_id="s", email="a@example.com", phone_number="123"),
            "phone_number",
        ),
    ],
)
async def test_invalid_users_are_rejected(stub, request_, field) -> None:
    with pytest.raises(errors.InvalidArgument) as err:
        await stub.create_user(request_)
    assert err.value.details["field"] == field


async def test_users_see_only_themselves_admins_everyone(stub) -> None:
    me = await stub.create_user(signup("sub-me", "me@example.com"))
    other = await stub.create_user(signup("sub-other", "other@example.com"))
    with call_scope(as_user(me.id)):
        assert (await stub.get_user(pb.GetUserRequest(user_id=me.id))).email == "me@example.com"
        with pytest.raises(errors.NotFound):
            await stub.get_user(pb.GetUserRequest(user_id=other.id))
    with call_scope(as_user("admin-id", "admin")):
        assert (await stub.get_user(pb.GetUserRequest(user_id=other.id))).id == other.id


async def test_update_user_and_profile(stub) -> None:
    me = await stub.create_user(signup())
    with call_scope(as_user(me.id)):
        updated = await stub.update_user(
            pb.UpdateUserRequest(user_id=me.id, phone_number="+819012345678")
        )
        assert (updated.email, updated.phone_number) == ("hanako@example.com", "+819012345678")
        profile = await stub.update_user_profile(
            pb.UpdateUserProfileRequest(
                user_id=me.id,
                avatar_url="https://img.example.com/me.png",
                preferences={"lang": "ja", "theme": "dark"},
            )
        )
        profile = await stub.update_user_profile(
            pb.UpdateUserProfileRequest(
                user_id=me.id,
                display_name="花子",
                preferences={"theme": ""},
            )
        )
        assert (profile.display_name, profile.preferences) == ("花子", {"lang": "ja"})
        fetched = await stub.get_user_profile(pb.GetUserRequest(user_id=me.id))
        assert fetched.avatar_url == "https://img.example.com/me.png"
        with pytest.raises(errors.InvalidArgument):
            await stub.update_user_profile(
                pb.UpdateUserProfileRequest(user_id=me.id, avatar_url="javascript:alert(1)")
            )


async def test_deactivate(stub) -> None:
    me = await stub.create_user(signup())
    with call_scope(as_user(me.id)):
        deactivated = await stub.deactivate_user(pb.GetUserRequest(user_id=me.id))
    assert not deactivated.active
    assert not (await stub.get_user(pb.GetUserRequest(cognito_user_id="sub-1"))).active


async def test_bad_and_unknown_ids(stub) -> None:
    with pytest.raises(errors.InvalidArgument):
        await stub.get_user(pb.GetUserRequest(user_id="not-a-uuid"))
    with pytest.raises(errors.NotFound):
        await stub.get_user(pb.GetUserRequest(user_id=str(uuid.uuid4())))
    with pytest.raises(errors.InvalidArgument):
        await stub.get_user(pb.GetUserRequest())


async def test_sellers_are_found_by_their_seller_id(stub) -> None:
    seller = await stub.create_user(
        pb.CreateUserRequest(cognito_user_id="s-1", email="shop@example.com", seller_id="shop-1")
    )
    assert seller.seller_id == "shop-1"
    found = await stub.get_user(pb.GetUserRequest(seller_id="shop-1"))
    assert found.id == seller.id
    with pytest.raises(errors.NotFound):
        await stub.get_user(pb.GetUserRequest(seller_id="nobody"))
    with pytest.raises(errors.AlreadyExists):
        await stub.create_user(
            pb.CreateUserRequest(cognito_user_id="s-2", email="b@example.com", seller_id="shop-1")
        )


async def test_an_existing_account_gains_its_seller_id(stub) -> None:
    # First seen through an access token (no seller id), later with one.
    first = await stub.create_user(signup("sub-late", "late@example.com"))
    assert first.seller_id == ""
    again = await stub.create_user(
        pb.CreateUserRequest(cognito_user_id="sub-late", email="late@example.com", seller_id="s9")
    )
    assert (again.id, again.seller_id) == (first.id, "s9")


async def test_a_new_subject_for_a_known_email_relinks_only_when_asked(stub) -> None:
    # The local pool was recreated: Cognito issued a new subject for the same email.
    old = await stub.create_user(signup("sub-old", "again@example.com"))
    with pytest.raises(errors.AlreadyExists):
        await stub.create_user(signup("sub-new", "again@example.com"))
    relinked = await stub.create_user(
        pb.CreateUserRequest(
            cognito_user_id="sub-new", email="again@example.com", relink_email=True
        )
    )
    assert (relinked.id, relinked.cognito_user_id) == (old.id, "sub-new")
    with pytest.raises(errors.NotFound):
        await stub.get_user(pb.GetUserRequest(cognito_user_id="sub-old"))


async def test_many_users_in_one_call_in_the_order_asked(stub) -> None:
    first = await stub.create_user(signup("sub-a", "a@example.com"))
    second = await stub.create_user(signup("sub-b", "b@example.com"))
    nobody = str(uuid.uuid4())

    found = await stub.get_users(
        pb.GetUsersRequest(user_ids=[second.id, nobody, first.id, second.id])
    )

    assert [(u.id, u.email) for u in found.users] == [
        (second.id, "b@example.com"),
        (first.id, "a@example.com"),
    ]
    assert (await stub.get_users(pb.GetUsersRequest())).users == []
    with call_scope(as_user(first.id)):  # an end user finds only themselves
        mine = await stub.get_users(pb.GetUsersRequest(user_ids=[second.id, first.id]))
    assert [u.id for u in mine.users] == [first.id]


@pytest.mark.parametrize(
    "user_ids", [["not-an-id"], [str(uuid.uuid4()) for _ in range(101)]], ids=["bad", "101"]
)
async def test_get_users_refuses_bad_ids_and_too_many(stub, user_ids: list[str]) -> None:
    with pytest.raises(errors.InvalidArgument) as refused:
        await stub.get_users(pb.GetUsersRequest(user_ids=user_ids))
    assert refused.value.details["field"] == "user_ids"
