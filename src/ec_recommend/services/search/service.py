"""SearchService over gRPC: validation and conversion at the edge."""

from __future__ import annotations

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend._gen.ecommerce import search as pb
from ec_recommend.platform.clock import aware
from ec_recommend.platform.paging import parse_page
from ec_recommend.services.search import domain
from ec_recommend.services.search.index import SearchIndex


def snapshot_from_pb(product: pb_product.Product) -> domain.ProductSnapshot:
    """The index's view of a ProductService product (or a product event's payload)."""
    base = product.base_price or pb_common.Money(amount=0, currency="JPY")
    created = aware(product.created_at) if product.created_at else None
    updated = aware(product.updated_at) if product.updated_at else created
    if created is None or updated is None:
        raise ValueError(f"product {product.id} has no timestamps")
    return domain.ProductSnapshot(
        id=product.id,
        seller_id=product.seller_id,
        name=product.name,
        description=product.description,
        currency=base.currency,
        base_price=base.amount,
        sale_price=None if product.sale_price is None else product.sale_price.amount,
        stock=product.stock_quantity,
        status=product.status,
        created_at=created,
        updated_at=updated,
        images=tuple(domain.Image(i.url, i.alt_text) for i in product.images),
    )


def snapshot_to_pb(snapshot: domain.ProductSnapshot) -> pb_product.Product:
    sale = snapshot.sale_price
    return pb_product.Product(
        id=snapshot.id,
        seller_id=snapshot.seller_id,
        name=snapshot.name,
        description=snapshot.description,
        base_price=pb_common.Money(amount=snapshot.base_price, currency=snapshot.currency),
        sale_price=None
        if sale is None
        else pb_common.Money(amount=sale, currency=snapshot.currency),
        stock_quantity=snapshot.stock,
        status=snapshot.status,
        images=[pb_product.ProductImage(url=i.url, alt_text=i.alt_text) for i in snapshot.images],
        created_at=snapshot.created_at,
        updated_at=snapshot.updated_at,
    )


class SearchService(pb.SearchServiceBase):
    def __init__(self, index: SearchIndex) -> None:
        self.index = index

    async def search_products(self, message: pb.SearchProductsRequest) -> pb.SearchProductsResponse:
        terms = domain.parse_terms(message.query)
        filters = domain.validate_filters(
            message.min_price, message.max_price, message.seller_id, message.in_stock
        )
        page = parse_page(message.page, sortable=domain.SORTABLE, default_sort="relevance")
        hits, total = await self.index.search(terms, filters, page)
        return pb.SearchProductsResponse(
            hits=[pb.SearchHit(product=snapshot_to_pb(h.product), score=h.score) for h in hits],
            page=page.response(total),
        )
