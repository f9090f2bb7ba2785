"""Product rules with no I/O: what a valid product, update and review is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

from ec_recommend.platform.errors import InvalidArgument
from ec_recommend.platform.money import Money

ACTIVE = "active"
OUT_OF_STOCK = "out_of_stock"
ARCHIVED = "archived"
STATUSES = frozenset({ACTIVE, OUT_OF_STOCK, ARCHIVED})

MAX_NAME = 200
MAX_DESCRIPTION = 10_000
MAX_IMAGES = 20
MAX_URL = 2048
MAX_ALT_TEXT = 300
MAX_STOCK = 1_000_000_000
MAX_COMMENT = 4000


@dataclass(frozen=True)
class Image:
    url: str
    alt_text: str = ""


@dataclass(frozen=True)
class Product:
    id: str
    seller_id: str
    name: str
    description: str
    base_price: Money
    sale_price: Money | None
    available: int
    reserved: int
    status: str
    images: tuple[Image, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def price(self) -> Money:
        """What a buyer pays per unit now."""
        return self.sale_price if self.sale_price is not None else self.base_price


def validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument("name must not be empty", field="name")
    if len(name) > MAX_NAME:
        raise InvalidArgument(f"name must be at most {MAX_NAME} characters", field="name")
    return name


def validate_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidArgument(
            f"description must be at most {MAX_DESCRIPTION} characters", field="description"
        )
    return description


def validate_prices(base: Money, sale: Money | None) -> None:
    if sale is None:
        return
    if sale.currency != base.currency:
        raise InvalidArgument("sale_price must use the currency of base_price", field="sale_price")
    if sale.amount > base.amount:
        raise InvalidArgument("sale_price must not exceed base_price", field="sale_price")


def validate_quantity(quantity: int, field: str, *, allow_zero: bool = True) -> int:
    if quantity < 0 or (quantity == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidArgument(f"{field} must be {bound}", field=field)
    if quantity > MAX_STOCK:
        raise InvalidArgument(f"{field} is too large", field=field)
    return quantity


def validate_images(images: list[tuple[str, str]]) -> tuple[Image, ...]:
    if len(images) > MAX_IMAGES:
        raise InvalidArgument(f"at most {MAX_IMAGES} images", field="images")
    result = []
    for index, (url, alt_text) in enumerate(images):
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > MAX_URL:
            raise InvalidArgument("image url must be an http(s) URL", field=f"images[{index}].url")
        if len(alt_text) > MAX_ALT_TEXT:
            raise InvalidArgument(
                f"alt_text must be at most {MAX_ALT_TEXT} characters",
                field=f"images[{index}].alt_text",
            )
        result.append(Image(url, alt_text))
    return tuple(result)


def validate_status(status: str) -> str:
    if status not in STATUSES:
        raise InvalidArgument(
            f"status must be one of {', '.join(sorted(STATUSES))}", field="status"
        )
    return status


def status_for_stock(current: str, available: int) -> str:
    """Status after stock changed: archived stays archived."""
    if current == ARCHIVED:
        return ARCHIVED
    return ACTIVE if available > 0 else OUT_OF_STOCK


def validate_review(rating: int, comment: str) -> tuple[int, str]:
    if not 1 <= rating <= 5:
        raise InvalidArgument("rating must be between 1 and 5", field="rating")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidArgument(f"comment must be at most {MAX_COMMENT} characters", field="comment")
    return rating, comment
