"""ProductService over real gRPC on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.platform import errors
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope

pytestmark = pytest.mark.asyncio

SELLER = Identity(user_id="u-seller", roles=frozenset({"seller"}), seller_id="seller-1")
OTHER_SELLER = Identity(user_id="u-other", roles=frozenset({"seller"}), seller_id="seller-2")
CUSTOMER = Identity(user_id="u-customer", roles=frozenset({"customer"}))
ADMIN = Identity(user_id="u-admin", roles=frozenset({"admin"}))


def yen(amount: int) -> pb_common.Money:
    return pb_common.Money(amount=amount, currency="JPY")


@pytest_asyncio.fixture
async def stub(services) -> AsyncIterator[pb.ProductServiceStub]:
    async with services("product") as hosted:
        yield hosted.clients.stub(pb.ProductServiceStub, "product")


async def create(stub: pb.ProductServiceStub, *, as_: Identity = SELLER, **fields) -> pb.Product:
    request = pb.CreateProductRequest(
        name=fields.pop("name", "Green tea"),
        description=fields.pop("description", "Sencha from Shizuoka"),
        base_price=fields.pop("base_price", yen(1200)),
        stock_quantity=fields.pop("stock_quantity", 5),
        **fields,
    )
    with call_scope(CallContext(identity=as_)):
        return await stub.create_product(request)


async def test_create_and_get_round_trip(stub) -> None:
    created = await create(
        stub,
        sale_price=yen(1000),
        images=[pb.ProductImage(url="https://img.example.com/tea.jpg", alt_text="tea")],
    )
    fetched = await stub.get_product(pb.GetProductRequest(product_id=created.id))
    assert fetched.seller_id == "seller-1"
    assert (fetched.name, fetched.status, fetched.stock_quantity) == ("Green tea", "active", 5)
    assert fetched.base_price == yen(1200) and fetched.sale_price == yen(1000)
    assert fetched.images[0].url == "https://img.example.com/tea.jpg"
    assert fetched.created_at is not None and fetched.created_at.tzinfo is not None


async def test_customers_cannot_create_and_sellers_only_as_themselves(stub) -> None:
    with pytest.raises(errors.PermissionDenied):
        await create(stub, as_=CUSTOMER)
    with pytest.raises(errors.PermissionDenied):
        await create(stub, seller_id="seller-2")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "  "}, "name"),
        ({"base_price": yen(-1)}, "base_price.amount"),
        ({"base_price": None}, "base_price"),
        ({"stock_quantity": -3}, "stock_quantity"),
        ({"sale_price": yen(5000)}, "sale_price"),
        ({"images": [pb.ProductImage(url="ftp://x/y.png")]}, "images[0].url"),
    ],
)
async def test_invalid_products_are_rejected_and_nothing_is_stored(stub, fields, field) -> None:
    with pytest.raises(errors.InvalidArgument) as err:
        await create(stub, **fields)
    assert err.value.details["field"] == field
    listed = await stub.list_products(pb.ListProductsRequest())
    assert listed.page.total_items == 0


async def test_bad_and_unknown_ids(stub) -> None:
    with pytest.raises(errors.InvalidArgument):
        await stub.get_product(pb.GetProductRequest(product_id="../etc/passwd"))
    with pytest.raises(errors.NotFound):
        await stub.get_product(pb.GetProductRequest(product_id=str(uuid.uuid4())))


async def test_update_changes_only_given_fields_and_checks_owner(stub) -> None:
    product = await create(stub)
    with call_scope(CallContext(identity=SELLER)):
        updated = await stub.update_product(
            pb.UpdateProductRequest(product_id=product.id, name="Matcha", base_price=yen(1500))
        )
    assert (updated.name, updated.description, updated.base_price.amount) == (
        "Matcha",
        "Sencha from Shizuoka",
        1500,
    )
    with call_scope(CallContext(identity=OTHER_SELLER)), pytest.raises(errors.PermissionDenied):
        await stub.update_product(pb.UpdateProductRequest(product_id=product.id, name="Mine"))
    with call_scope(CallContext(identity=ADMIN)):
        await stub.update_product(pb.UpdateProductRequest(product_id=product.id, name="Admin"))


async def test_archive_hides_from_default_list_and_blocks_reservations(stub) -> None:
    product = await create(stub)
    with call_scope(CallContext(identity=SELLER)):
        archived = await stub.delete_product(pb.GetProductRequest(product_id=product.id))
    assert archived.status == "archived"
    listed = await stub.list_products(pb.ListProductsRequest())
    assert product.id not in [p.id for p in listed.products]
    listed = await stub.list_products(pb.ListProductsRequest(status="archived"))
    assert [p.id for p in listed.products] == [product.id]
    with pytest.raises(errors.FailedPrecondition) as err:
        await stub.reserve_stock(
            pb.ReserveStockRequest(
                reservation_id="o1", lines=[pb.StockLine(product_id=product.id, quantity=1)]
            )
        )
    assert err.value.details["reason"] == "product_archived"


async def test_list_pages_filters_and_sorts(stub) -> None:
    for index, price in enumerate([300, 100, 200]):
        await create(stub, name=f"item {index}", base_price=yen(price))
    await create(stub, as_=OTHER_SELLER, name="other", base_price=yen(50))
    by_price = await stub.list_products(
        pb.ListProductsRequest(
            seller_id="seller-1", page=pb_common.PageRequest(sort_by="price", page_size=2)
        )
    )
    assert [p.base_price.amount for p in by_price.products] == [100, 200]
    assert (by_price.page.total_items, by_price.page.total_pages) == (3, 2)
    with pytest.raises(errors.InvalidArgument):
        await stub.list_products(pb.ListProductsRequest(page=pb_common.PageRequest(page_size=101)))
    with pytest.raises(errors.InvalidArgument):
        await stub.list_products(pb.ListProductsRequest(status="gone"))


async def test_stock_operations(stub) -> None:
    product = await create(stub, stock_quantity=5)
    ident = CallContext(identity=SELLER)

    async def update(
        op: pb.StockOperation, quantity: int, reservation: str = ""
    ) -> pb.StockResponse:
        with call_scope(ident):
            return await stub.update_stock(
                pb.UpdateStockRequest(
                    product_id=product.id,
                    operation=op,
                    quantity=quantity,
                    reservation_id=reservation,
                )
            )

    assert (await update(pb.StockOperation.ADD, 3)).available_stock == 8
    assert (await update(pb.StockOperation.SET, 4)).available_stock == 4
    with pytest.raises(errors.FailedPrecondition):
        await update(pb.StockOperation.ADD, -5)
    reserved = await update(pb.StockOperation.RESERVE, 3, "r1")
    assert (reserved.available_stock, reserved.reserved_stock) == (1, 3)
    again = await update(pb.StockOperation.RESERVE, 3, "r1")
    assert (again.available_stock, again.reserved_stock) == (1, 3), "same reservation id twice"
    released = await update(pb.StockOperation.RELEASE, 0, "r1")
    assert (released.available_stock, released.reserved_stock) == (4, 0)
    await update(pb.StockOperation.RESERVE, 4, "r2")
    assert (await stub.get_product(pb.GetProductRequest(product_id=product.id))).status == (
        "out_of_stock"
    )
    committed = await update(pb.StockOperation.COMMIT, 0, "r2")
    assert (committed.available_stock, committed.reserved_stock) == (0, 0)
    with pytest.raises(errors.FailedPrecondition):
        await update(pb.StockOperation.RELEASE, 0, "r2")
    with pytest.raises(errors.InvalidArgument):
        await update(pb.StockOperation.RESERVE, 1, "")
    with call_scope(CallContext(identity=OTHER_SELLER)), pytest.raises(errors.PermissionDenied):
        await stub.update_stock(
            pb.UpdateStockRequest(
                product_id=product.id, operation=pb.StockOperation.ADD, quantity=1
            )
        )


async def test_multi_line_reservation_is_all_or_nothing(stub) -> None:
    plenty = await create(stub, name="plenty", stock_quantity=10)
    scarce = await create(stub, name="scarce", stock_quantity=1)
    with pytest.raises(errors.FailedPrecondition) as err:
        await stub.reserve_stock(
            pb.ReserveStockRequest(
                reservation_id="o1",
                lines=[
                    pb.StockLine(product_id=plenty.id, quantity=4),
                    pb.StockLine(product_id=scarce.id, quantity=2),
                ],
            )
        )
    assert err.value.details["product_id"] == scarce.id
    after = await stub.get_products(pb.GetProductsRequest(product_ids=[plenty.id, scarce.id]))
    assert [p.stock_quantity for p in after.products] == [10, 1]
    ok = await stub.reserve_stock(
        pb.ReserveStockRequest(
            reservation_id="o2",
            lines=[
                pb.StockLine(product_id=plenty.id, quantity=4),
                pb.StockLine(product_id=scarce.id, quantity=1),
            ],
        )
    )
    assert ok.state == "reserved"
    assert await stub.commit_stock(pb.ReservationRequest(reservation_id="o2"))
    restocked = await stub.restock_reservation(pb.ReservationRequest(reservation_id="o2"))
    assert restocked.state == "restocked"
    assert sorted(s.available_stock for s in restocked.stock) == [1, 10]


async def test_batch_get_keeps_order_and_skips_unknown(stub) -> None:
    first, second = await create(stub, name="a"), await create(stub, name="b")
    missing = str(uuid.uuid4())
    got = await stub.get_products(pb.GetProductsRequest(product_ids=[second.id, missing, first.id]))
    assert [p.id for p in got.products] == [second.id, first.id]


async def test_reviews(stub) -> None:
    product = await create(stub)
    with call_scope(CallContext(identity=CUSTOMER)):
        review = await stub.create_review(
            pb.CreateReviewRequest(product_id=product.id, rating=5, comment="おいしい")
        )
        with pytest.raises(errors.AlreadyExists):
            await stub.create_review(pb.CreateReviewRequest(product_id=product.id, rating=4))
        with pytest.raises(errors.InvalidArgument):
            await stub.create_review(pb.CreateReviewRequest(product_id=product.id, rating=9))
    assert review.user_id == "u-customer"
    listed = await stub.list_reviews(pb.ListReviewsRequest(product_id=product.id))
    assert [(r.rating, r.comment) for r in listed.reviews] == [(5, "おいしい")]
