"""User and profile tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.errors import AlreadyExists, NotFound
from ec_recommend.platform.events.outbox import outbox_migration
from ec_recommend.platform.ids import new_id
from ec_recommend.platform.storage import Database, Migration, UnitOfWork
from ec_recommend.platform.storage.database import add_columns, create_tables
from ec_recommend.services.user import events

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("cognito_user_id", sa.String(128), nullable=False, unique=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("phone_number", sa.String(20), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Added in version 3: the custom:seller_id of a seller's account.
    sa.Column("seller_id", sa.String(64), nullable=True),
    sa.Index("users_by_seller_id", "seller_id", unique=True),
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("avatar_url", sa.String(2048), nullable=False),
    sa.Column("preferences", sa.JSON, nullable=False),
)

MIGRATIONS = [
    Migration(1, create_tables(metadata)),
    outbox_migration(2),
    Migration(3, add_columns(users, "seller_id")),
]


# A user by each of its unique keys, built once (``platform.storage.statements``).
_BY_KEY = {
    name: sa.select(users).where(users.c[name] == sa.bindparam("value"))
    for name in ("id", "cognito_user_id", "seller_id", "email")
}
_BY_IDS = sa.select(users).where(users.c.id.in_(sa.bindparam("user_ids", expanding=True)))
_PROFILE = sa.select(profiles).where(profiles.c.user_id == sa.bindparam("user_id"))


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        subject: str,
        email: str,
        phone: str,
        display_name: str,
        seller_id: str = "",
        relink_email: bool = False,
    ) -> tuple[Any, bool]:
        """Create the user of ``subject``, or return the existing one (created=False).

        An existing user without a seller id gains the one given (an account
        first seen through an access token, which carries none). With
        ``relink_email`` an account holding ``email`` under another subject
        is moved to ``subject`` (see CreateUserRequest.relink_email).
        """
        existing = await self.find(cognito_user_id=subject)
        if existing is not None:
            if seller_id and not existing.seller_id:
                return await self.update(existing.id, {"seller_id": seller_id}), False
            return existing, False
        now = utcnow()
        user_id = new_id()
        try:
            async with self.db.unit_of_work() as uow:
                await uow.execute(
                    sa.insert(users).values(
                        id=user_id,
                        cognito_user_id=subject,
                        email=email,
                        phone_number=phone,
                        active=True,
                        created_at=now,
                        updated_at=now,
                        seller_id=seller_id or None,
                    )
                )
                await uow.execute(
                    sa.insert(profiles).values(
                        user_id=user_id,
                        display_name=display_name,
                        avatar_url="",
                        preferences={},
                    )
                )
                await events.user_created(
                    uow, user_id=user_id, subject=subject, email=email, display_name=display_name
                )
                await uow.commit()
        except IntegrityError:
            # Either a concurrent CreateUser for the same subject won, or the
            # email or seller id belongs to another account.
            existing = await self.find(cognito_user_id=subject)
            if existing is not None:
                return existing, False
            stale = await self.find(email=email) if relink_email else None
            if stale is None:
                raise AlreadyExists(
                    "email or seller id is already registered", field="email"
                ) from None
            changes = {"cognito_user_id": subject}
            if seller_id and not stale.seller_id:
                changes["seller_id"] = seller_id
            return await self.update(stale.id, changes), False
        user = await self.find(user_id=user_id)
        assert user is not None
        return user, True

    async def find(
        self,
        *,
        user_id: str = "",
        cognito_user_id: str = "",
        seller_id: str = "",
        email: str = "",
    ) -> Any | None:
        """The user with the one key given, or None."""
        column, value = next(
            (column, value)
            for column, value in (
                ("id", user_id),
                ("cognito_user_id", cognito_user_id),
                ("seller_id", seller_id),
                ("email", email),
            )
            if value
        )
        return await self.db.first(_BY_KEY[column], {"value": value})

    async def find_many(self, user_ids: Sequence[str]) -> list[Any]:
        """The users of these ids that exist, in the order asked (bounded by the caller)."""
        if not user_ids:
            return []
        rows = {row.id: row for row in await self.db.rows(_BY_IDS, {"user_ids": list(user_ids)})}
        return [rows[user_id] for user_id in user_ids if user_id in rows]

    async def get(self, user_id: str) -> Any:
        row = await self.find(user_id=user_id)
        if row is None:
            raise NotFound(f"user {user_id} not found", user_id=user_id)
        return row

    async def update(self, user_id: str, changes: dict[str, Any]) -> Any:
        try:
            async with self.db.unit_of_work() as uow:
                await self._require(uow, user_id)
                await uow.execute(
                    sa.update(users)
                    .where(users.c.id == user_id)
                    .values(**changes, updated_at=utcnow())
                )
                await events.user_updated(uow, await self._row(uow, user_id), list(changes))
                await uow.commit()
        except IntegrityError:
            raise AlreadyExists("email is already registered", field="email") from None
        return await self.get(user_id)

    async def profile(self, user_id: str) -> Any:
        row = await self.db.first(_PROFILE, {"user_id": user_id})
        if row is None:
            raise NotFound(f"user {user_id} not found", user_id=user_id)
        return row

    async def update_profile(self, user_id: str, changes: dict[str, Any]) -> Any:
        async with self.db.unit_of_work() as uow:
            await self._require(uow, user_id)
            if changes:
                await uow.execute(
                    sa.update(profiles).where(profiles.c.user_id == user_id).values(**changes)
                )
                await events.user_updated(uow, await self._row(uow, user_id), list(changes))
            await uow.commit()
        return await self.profile(user_id)

    @staticmethod
    async def _row(uow: UnitOfWork, user_id: str) -> Any:
        return (await uow.execute(sa.select(users).where(users.c.id == user_id))).first()

    @staticmethod
    async def _require(uow: UnitOfWork, user_id: str) -> None:
        found = (await uow.execute(sa.select(users.c.id).where(users.c.id == user_id))).first()
        if found is None:
            raise NotFound(f"user {user_id} not found", user_id=user_id)
