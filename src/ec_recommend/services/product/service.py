"""ProductService over gRPC: validation, ownership, conversion at the edge."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ec_recommend._gen.ecommerce import product as pb
from ec_recommend.platform.clock import aware
from ec_recommend.platform.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from ec_recommend.platform.ids import require_id
from ec_recommend.platform.money import money_from_pb
from ec_recommend.platform.paging import parse_page
from ec_recommend.platform.rpc.context import current_call
from ec_recommend.services.product import domain
from ec_recommend.services.product.leases import Leases
from ec_recommend.services.product.store import (
    COMMITTED,
    RELEASED,
    RESERVED,
    RESTOCKED,
    SORT_COLUMNS,
    Outcome,
    ProductStore,
)

MAX_BATCH = 500
MAX_RESERVATION_LINES = 100
VISIBLE_BY_DEFAULT = (domain.ACTIVE, domain.OUT_OF_STOCK)


def product_to_pb(product: domain.Product) -> pb.Product:
    return pb.Product(
        id=product.id,
        seller_id=product.seller_id,
        name=product.name,
        description=product.description,
        base_price=product.base_price.to_pb(),
        sale_price=None if product.sale_price is None else product.sale_price.to_pb(),
        stock_quantity=product.available,
        status=product.status,
        images=[pb.ProductImage(url=i.url, alt_text=i.alt_text) for i in product.images],
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def stock_to_pb(product: domain.Product) -> pb.StockResponse:
    return pb.StockResponse(
        product_id=product.id, available_stock=product.available, reserved_stock=product.reserved
    )


def _require_reservation_id(value: str) -> str:
    if not value or len(value) > 100:
        raise InvalidArgument(
            "reservation_id is required (at most 100 characters)", field="reservation_id"
        )
    return value


def _check_owner(product: domain.Product) -> None:
    """End users may change only their own products; internal calls carry no user."""
    identity = current_call().identity
    if identity is None or identity.is_admin:
        return
    if not identity.is_seller or identity.seller_id != product.seller_id:
        raise PermissionDenied("only the product's seller may change it", product_id=product.id)


def _images(images: Sequence[pb.ProductImage]) -> tuple[domain.Image, ...]:
    return domain.validate_images([(i.url, i.alt_text) for i in images])


class ProductService(pb.ProductServiceBase):
    def __init__(self, store: ProductStore, leases: Leases | None = None) -> None:
        self.store = store
        self.leases = leases or Leases(store.db)

    async def get_product(self, message: pb.GetProductRequest) -> pb.Product:
        product_id = require_id(message.product_id, "product_id")
        return product_to_pb(await self.store.get(product_id))

    async def get_products(self, message: pb.GetProductsRequest) -> pb.GetProductsResponse:
        if len(message.product_ids) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} ids per call", field="product_ids")
        ids = [require_id(pid, "product_ids") for pid in message.product_ids]
        products = await self.store.get_many(ids)
        return pb.GetProductsResponse(products=[product_to_pb(p) for p in products])

    async def list_products(self, message: pb.ListProductsRequest) -> pb.ListProductsResponse:
        page = parse_page(message.page, sortable=SORT_COLUMNS, default_sort="created_at")
        statuses: Sequence[str] = VISIBLE_BY_DEFAULT
        if message.status:
            statuses = (domain.validate_status(message.status),)
        if len(message.seller_id) > 64:
            raise InvalidArgument("seller_id is too long", field="seller_id")
        products, total = await self.store.list_page(
            page, seller_id=message.seller_id, statuses=statuses
        )
        return pb.ListProductsResponse(
            products=[product_to_pb(p) for p in products], page=page.response(total)
        )

    async def create_product(self, message: pb.CreateProductRequest) -> pb.Product:
        identity = current_call().identity
        seller_id = message.seller_id
        if identity is not None and not identity.is_admin:
            if not identity.is_seller:
                raise PermissionDenied("only sellers may create products")
            if seller_id and seller_id != identity.seller_id:
                raise PermissionDenied("sellers create products only under their own id")
            seller_id = identity.seller_id
        if not seller_id or len(seller_id) > 64:
            raise InvalidArgument(
                "seller_id is required (at most 64 characters)", field="seller_id"
            )
        base = money_from_pb(message.base_price, "base_price")
        sale = money_from_pb(message.sale_price, "sale_price", required=False)
        assert base is not None
        domain.validate_prices(base, sale)
        product = await self.store.create(
            seller_id=seller_id,
            name=domain.validate_name(message.name),
            description=domain.validate_description(message.description),
            base_price=base,
            sale_price=sale,
            stock=domain.validate_quantity(message.stock_quantity, "stock_quantity"),
            images=_images(message.images),
        )
        return product_to_pb(product)

    async def update_product(self, message: pb.UpdateProductRequest) -> pb.Product:
        product_id = require_id(message.product_id, "product_id")
        current = await self.store.get(product_id)
        _check_owner(current)
        changes: dict[str, Any] = {}
        if message.name is not None:
            changes["name"] = domain.validate_name(message.name)
        if message.description is not None:
            changes["description"] = domain.validate_description(message.description)
        base = money_from_pb(message.base_price, "base_price", required=False) or current.base_price
        sale = money_from_pb(message.sale_price, "sale_price", required=False)
        if message.clear_sale_price:
            if sale is not None:
                raise InvalidArgument(
                    "sale_price and clear_sale_price conflict", field="sale_price"
                )
            changes["sale_price"] = None
        elif sale is None and message.base_price is not None:
            sale = current.sale_price  # a new base price must still cover the sale price
        try:
            domain.validate_prices(base, sale)
        except InvalidArgument as exc:
            if message.base_price is not None and message.sale_price is not None:
                raise  # the request contradicts itself
            # a well-formed request that conflicts with the stored price
            raise FailedPrecondition(exc.message, reason="price_conflict", **exc.details) from None
        if message.base_price is not None:
            changes["base_price"] = base.amount
            changes["currency"] = base.currency
        if message.sale_price is not None and sale is not None:
            changes["sale_price"] = sale.amount
        if message.status is not None:
            changes["status"] = domain.validate_status(message.status)
        if message.replace_images or message.images:
            changes["images"] = [
                {"url": i.url, "alt_text": i.alt_text} for i in _images(message.images)
            ]
        if not changes:
            return product_to_pb(current)
        return product_to_pb(await self.store.update(product_id, changes))

    async def delete_product(self, message: pb.GetProductRequest) -> pb.Product:
        product_id = require_id(message.product_id, "product_id")
        _check_owner(await self.store.get(product_id))
        return product_to_pb(await self.store.update(product_id, {"status": domain.ARCHIVED}))

    async def get_stock(self, message: pb.GetProductRequest) -> pb.StockResponse:
        product_id = require_id(message.product_id, "product_id")
        product = await self.store.get(product_id)
        _check_owner(product)
        return stock_to_pb(product)

    async def update_stock(self, message: pb.UpdateStockRequest) -> pb.StockResponse:
        product_id = require_id(message.product_id, "product_id")
        op = message.operation
        if op in (pb.StockOperation.ADD, pb.StockOperation.SET):
            _check_owner(await self.store.get(product_id))
            if op == pb.StockOperation.ADD:
                if abs(message.quantity) > domain.MAX_STOCK:
                    raise InvalidArgument("quantity is too large", field="quantity")
                product = await self.store.adjust_available(product_id, delta=message.quantity)
            else:
                quantity = domain.validate_quantity(message.quantity, "quantity")
                product = await self.store.adjust_available(product_id, absolute=quantity)
            return stock_to_pb(product)
        reservation_id = _require_reservation_id(message.reservation_id)
        if op == pb.StockOperation.RESERVE:
            quantity = domain.validate_quantity(message.quantity, "quantity", allow_zero=False)
            await self.store.reserve(reservation_id, [(product_id, quantity)])
        elif op == pb.StockOperation.RELEASE:
            await self.store.transition(reservation_id, RELEASED)
        elif op == pb.StockOperation.COMMIT:
            await self.store.transition(reservation_id, COMMITTED)
        else:
            raise InvalidArgument("operation is required", field="operation")
        return stock_to_pb(await self.store.get(product_id))

    async def reserve_stock(self, message: pb.ReserveStockRequest) -> pb.ReserveStockResponse:
        reservation_id = _require_reservation_id(message.reservation_id)
        if not message.lines:
            raise InvalidArgument("at least one line is required", field="lines")
        if len(message.lines) > MAX_RESERVATION_LINES:
            raise InvalidArgument(f"at most {MAX_RESERVATION_LINES} lines", field="lines")
        merged: dict[str, int] = {}
        for index, line in enumerate(message.lines):
            product_id = require_id(line.product_id, f"lines[{index}].product_id")
            quantity = domain.validate_quantity(
                line.quantity, f"lines[{index}].quantity", allow_zero=False
            )
            merged[product_id] = merged.get(product_id, 0) + quantity
        outcome = await self.store.reserve(reservation_id, list(merged.items()))
        return await self._reservation_response(reservation_id, outcome, with_products=True)

    async def confirm_reservation(
        self, message: pb.ConfirmReservationRequest
    ) -> pb.ReserveStockResponse:
        reservation_id = _require_reservation_id(message.reservation_id)
        if message.hold_until is None:
            raise InvalidArgument("hold_until is required", field="hold_until")
        lease = await self.leases.confirm(reservation_id, aware(message.hold_until))
        # No stock levels: this is on every checkout's path, and nothing changed them.
        return pb.ReserveStockResponse(
            reservation_id=reservation_id, state=lease.state, expires_at=lease.expires_at
        )

    async def release_stock(self, message: pb.ReservationRequest) -> pb.ReserveStockResponse:
        return await self._transition(message, RELEASED)

    async def commit_stock(self, message: pb.ReservationRequest) -> pb.ReserveStockResponse:
        return await self._transition(message, COMMITTED)

    async def restock_reservation(self, message: pb.ReservationRequest) -> pb.ReserveStockResponse:
        return await self._transition(message, RESTOCKED)

    async def _transition(
        self, message: pb.ReservationRequest, target: str
    ) -> pb.ReserveStockResponse:
        reservation_id = _require_reservation_id(message.reservation_id)
        outcome = await self.store.transition(reservation_id, target)
        return await self._reservation_response(reservation_id, outcome)

    async def _reservation_response(
        self, reservation_id: str, outcome: Outcome, *, with_products: bool = False
    ) -> pb.ReserveStockResponse:
        """Each reserved product's stock, by id, and the lease while reserved:
        as the call's own move left them, or read when it moved nothing.
        ``with_products``: the products themselves too (ReserveStock's answer,
        which its caller prices from)."""
        products, expires_at = outcome.products, outcome.expires_at
        if products is None:  # a replay: what is there now
            reservation = await self.store.reservation(reservation_id)
            products = await self.store.get_many(sorted(reservation.product_ids))
            expires_at = reservation.expires_at
        return pb.ReserveStockResponse(
            reservation_id=reservation_id,
            state=outcome.state,
            stock=[stock_to_pb(p) for p in products],
            expires_at=expires_at if outcome.state == RESERVED else None,
            products=[product_to_pb(p) for p in products] if with_products else [],
        )

    async def create_review(self, message: pb.CreateReviewRequest) -> pb.Review:
        product_id = require_id(message.product_id, "product_id")
        identity = current_call().identity
        user_id = identity.user_id if identity is not None else message.user_id
        if not user_id:
            raise InvalidArgument("user_id is required", field="user_id")
        rating, comment = domain.validate_review(message.rating, message.comment)
        row = await self.store.create_review(product_id, user_id, rating, comment)
        return pb.Review(**row)

    async def list_reviews(self, message: pb.ListReviewsRequest) -> pb.ListReviewsResponse:
        product_id = require_id(message.product_id, "product_id")
        page = parse_page(
            message.page, sortable=("created_at", "rating"), default_sort="created_at"
        )
        await self.store.get(product_id)
        rows, total = await self.store.list_reviews(product_id, page)
        return pb.ListReviewsResponse(
            reviews=[
                pb.Review(
                    id=r.id,
                    product_id=r.product_id,
                    user_id=r.user_id,
                    rating=r.rating,
                    comment=r.comment,
                    created_at=aware(r.created_at),
                )
                for r in rows
            ],
            page=page.response(total),
        )
