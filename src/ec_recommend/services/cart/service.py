"""CartService over gRPC: whose cart, validation, pricing at read time."""

from __future__ import annotations

from ec_recommend._gen.ecommerce import cart as pb
from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.ids import require_id
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.context import current_call
from ec_recommend.platform.rpc.dataloader import DataLoader, product_loader
from ec_recommend.services.cart import domain
from ec_recommend.services.cart.store import CartStore, Line

SELLABLE = ("active",)
DEFAULT_CURRENCY = "JPY"


def _price(product: pb_product.Product) -> pb_common.Money:
    money = product.sale_price or product.base_price
    return money if money is not None else pb_common.Money(amount=0, currency=DEFAULT_CURRENCY)


def _item(product_id: str, quantity: int, product: pb_product.Product | None) -> pb.CartItem:
    if product is None:  # gone from the catalogue: show it so the user can remove it
        zero = pb_common.Money(amount=0, currency=DEFAULT_CURRENCY)
        return pb.CartItem(
            product_id=product_id, quantity=quantity, unit_price=zero, line_total=zero
        )
    price = _price(product)
    return pb.CartItem(
        product_id=product_id,
        name=product.name,
        quantity=quantity,
        unit_price=price,
        line_total=pb_common.Money(amount=price.amount * quantity, currency=price.currency),
        seller_id=product.seller_id,
        available=product.status in SELLABLE and product.stock_quantity >= quantity,
    )


class CartService(pb.CartServiceBase):
    def __init__(self, store: CartStore, clients: ClientFactory) -> None:
        self.store = store
        self.clients = clients

    def _products(self) -> DataLoader[str, pb_product.Product]:
        """A loader for this request only, so a price change shows at once."""
        return product_loader(self.clients.stub(pb_product.ProductServiceStub, "product"))

    async def get_cart(self, message: pb.GetCartRequest) -> pb.Cart:
        user_id = domain.cart_owner(current_call().identity, message.user_id)
        return await self._read(user_id, self._products())

    async def add_item(self, message: pb.AddItemRequest) -> pb.Cart:
        user_id = domain.cart_owner(current_call().identity, message.user_id)
        product_id = require_id(message.product_id, "product_id")
        quantity = domain.validate_quantity(message.quantity, allow_zero=False)
        loader = self._products()
        product = await loader.load(product_id)
        await self.store.change(
            user_id, product_id, add=quantity, check=self._stock_check(product_id, product)
        )
        return await self._read(user_id, loader)

    async def set_item_quantity(self, message: pb.SetItemQuantityRequest) -> pb.Cart:
        user_id = domain.cart_owner(current_call().identity, message.user_id)
        product_id = require_id(message.product_id, "product_id")
        quantity = domain.validate_quantity(message.quantity, allow_zero=True)
        loader = self._products()
        product = None if quantity == 0 else await loader.load(product_id)
        await self.store.change(
            user_id, product_id, set_to=quantity, check=self._stock_check(product_id, product)
        )
        return await self._read(user_id, loader)

    async def remove_item(self, message: pb.RemoveItemRequest) -> pb.Cart:
        user_id = domain.cart_owner(current_call().identity, message.user_id)
        product_id = require_id(message.product_id, "product_id")
        await self.store.remove(user_id, product_id)
        return await self._read(user_id, self._products())

    async def clear_cart(self, message: pb.GetCartRequest) -> pb.Cart:
        user_id = domain.cart_owner(current_call().identity, message.user_id)
        await self.store.clear(user_id)
        return pb.Cart(user_id=user_id, items=[], total=pb_common.Money(currency=DEFAULT_CURRENCY))

    @staticmethod
    def _stock_check(product_id: str, product: pb_product.Product | None) -> domain.QuantityCheck:
        def check(quantity: int) -> None:
            domain.check_addable(
                product_id,
                status=None if product is None else product.status,
                available=0 if product is None else product.stock_quantity,
                wanted=quantity,
            )

        return check

    async def _read(self, user_id: str, loader: DataLoader[str, pb_product.Product]) -> pb.Cart:
        lines: list[Line] = await self.store.lines(user_id)
        products = await loader.load_many(pid for pid, _ in lines)
        items = [_item(pid, qty, p) for (pid, qty), p in zip(lines, products, strict=True)]
        currency = next((i.unit_price.currency for i in items if i.unit_price), DEFAULT_CURRENCY)
        total = sum(i.line_total.amount for i in items if i.available and i.line_total)
        return pb.Cart(
            user_id=user_id, items=items, total=pb_common.Money(amount=total, currency=currency)
        )
