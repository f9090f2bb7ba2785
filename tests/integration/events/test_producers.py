"""User and product stores write their events in the unit of work of the change."""

from __future__ import annotations

from datetime import timedelta

import betterproto2
import pytest
import sqlalchemy as sa

from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend.config import StorageConfig
from ec_recommend.platform import errors
from ec_recommend.platform.clock import utcnow
from ec_recommend.platform.events.envelope import Event, decode
from ec_recommend.platform.events.outbox import outbox
from ec_recommend.platform.money import Money
from ec_recommend.platform.storage import Database, open_database
from ec_recommend.services.product import events as product_events
from ec_recommend.services.product import store as product_store
from ec_recommend.services.product.domain import Image
from ec_recommend.services.product.leases import Leases
from ec_recommend.services.user import store as user_store

pytestmark = pytest.mark.asyncio


async def recorded(db: Database) -> list[Event]:
    async with db.reading() as conn:
        bodies = (await conn.execute(sa.select(outbox.c.body).order_by(outbox.c.seq))).scalars()
        return [decode(body) for body in bodies]


async def test_user_service_records_created_and_updated(storage: StorageConfig) -> None:
    async with open_database(storage, "user", user_store.MIGRATIONS) as db:
        users = user_store.UserStore(db)
        user, _ = await users.create(
            subject="sub-1", email="a@example.com", phone="", display_name="A"
        )
        await users.update(user.id, {"email": "b@example.com"})
        await users.create(subject="sub-1", email="a@example.com", phone="", display_name="A")
        with pytest.raises(errors.AlreadyExists):
            await users.create(subject="sub-2", email="b@example.com", phone="", display_name="B")
        events = await recorded(db)
    assert [e.type for e in events] == ["user.created", "user.updated"]
    assert events[0].data.email == "a@example.com"  # type: ignore[attr-defined]
    assert events[1].data.changed_fields == ["email"]  # type: ignore[attr-defined]
    assert {e.source for e in events} == {"user-service"}


async def test_product_service_records_lifecycle_and_out_of_stock(storage: StorageConfig) -> None:
    async with open_database(storage, "product", product_store.MIGRATIONS) as db:
        products = product_store.ProductStore(db)
        product = await products.create(
            seller_id="s-1",
            name="Tea",
            description="",
            base_price=Money(1000),
            sale_price=None,
            stock=2,
            images=(),
        )
        await products.update(product.id, {"base_price": 900})
        await products.reserve("order-1", [(product.id, 2)])  # reaches zero
        with pytest.raises(errors.FailedPrecondition):
            await products.reserve("order-2", [(product.id, 1)])  # nothing recorded
        await products.transition("order-1", product_store.RELEASED)
        await products.adjust_available(product.id, absolute=0)
        await products.create_review(product.id, "u-1", 5, "good")
        events = await recorded(db)
    assert [e.type for e in events] == [
        "product.created",
        "product.updated",
        "product.out_of_stock",
        "product.updated",
        "product.updated",
        "product.out_of_stock",
        "review.created",
    ]
    assert events[1].data.changed_fields == ["base_price"]  # type: ignore[attr-defined]
    assert events[1].data.base_price.amount == 900  # type: ignore[attr-defined]
    assert events[3].data.stock_quantity == 2  # type: ignore[attr-defined]
    assert events[-1].data.rating == 5  # type: ignore[attr-defined]


async def test_stock_moves_record_each_product_as_the_move_left_it(
    storage: StorageConfig,
) -> None:
    """Every move of a reservation's units records the products it touched,
    as they are once it commits: out_of_stock when a reservation (or a late
    commit taking expired units again) empties a product, updated with the
    whole product when units become buyable again (release, restock, expiry)."""
    async with open_database(storage, "product", product_store.MIGRATIONS) as db:
        products = product_store.ProductStore(db, reservation_lease=60)

        async def create(name: str, stock: int) -> str:
            product = await products.create(
                seller_id=f"s-{name}",
                name=name,
                description=f"{name}, described",
                base_price=Money(1000),
                sale_price=Money(800),
                stock=stock,
                images=(Image("https://img.example.com/a.jpg", name),),
            )
            return product.id

        tea, cups = await create("tea", 2), await create("cups", 5)
        both = sorted([tea, cups])  # the order reservations move them in
        expected: list[betterproto2.Message] = []
        start = len(await recorded(db))

        async def out_of_stock(*product_ids: str) -> None:
            for product_id in product_ids:
                product = await products.get(product_id)
                assert product.available == 0
                expected.append(
                    pb_events.ProductOutOfStock(product_id=product_id, seller_id=product.seller_id)
                )

        async def updated(*product_ids: str) -> None:
            for product_id in product_ids:
                product = await products.get(product_id)
                expected.append(
                    pb_events.ProductUpdated(
                        **product_events._snapshot_fields(product),
                        changed_fields=["stock_quantity"],
                    )
                )

        await products.reserve("o-1", [(cups, 1), (tea, 2)])  # the tea runs out
        await out_of_stock(tea)
        await products.transition("o-1", product_store.RELEASED)
        await updated(*both)
        await products.transition("o-1", product_store.RELEASED)  # a replay: nothing

        await products.reserve("o-2", [(tea, 2), (cups, 5)])  # both run out
        await out_of_stock(*both)
        await products.transition("o-2", product_store.COMMITTED)  # nothing buyable
        await products.transition("o-2", product_store.RESTOCKED)
        await updated(*both)

        await products.reserve("o-3", [(tea, 1), (cups, 2)])  # neither runs out
        await Leases(db).expire_due(utcnow() + timedelta(minutes=10))
        await updated(*both)
        await products.reserve("o-4", [(tea, 1)])
        await products.transition("o-3", product_store.COMMITTED)  # takes them again
        await out_of_stock(tea)

        events = (await recorded(db))[start:]
    assert [e.data for e in events] == expected
