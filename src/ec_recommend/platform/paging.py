"""Validated paging for list RPCs (the seed's PageRequest/PageResponse)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend.platform.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page:
    number: int
    size: int
    sort_by: str
    descending: bool

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def response(self, total_items: int) -> pb_common.PageResponse:
        return pb_common.PageResponse(
            total_items=total_items,
            total_pages=(total_items + self.size - 1) // self.size,
            current_page=self.number,
            page_size=self.size,
        )


def parse_page(
    request: pb_common.PageRequest | None, *, sortable: Collection[str], default_sort: str
) -> Page:
    """Defaults for zero values; out-of-range values are INVALID_ARGUMENT."""
    request = request or pb_common.PageRequest()
    number = request.page or 1
    size = request.page_size or DEFAULT_PAGE_SIZE
    if number < 1:
        raise InvalidArgument("page must be >= 1", field="page")
    if number > 1_000_000:
        raise InvalidArgument("page is too large", field="page")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size")
    sort_by = request.sort_by or default_sort
    if sort_by not in sortable:
        raise InvalidArgument(
            f"sort_by must be one of {', '.join(sorted(sortable))}", field="sort_by"
        )
    return Page(number, size, sort_by, request.descending)
