"""Product events name a product; projections store its current state.

Rather than trust an event's payload (which may be older than one already
applied, and lacks timestamps and images), the search and recommendation
subscribers fetch the product from ProductService and store that snapshot;
the projections keep the newest ``updated_at``, so redelivered or reordered
events never roll a product back.
"""

from __future__ import annotations

from ec_recommend._gen.ecommerce import events as pb
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend.platform.errors import NotFound
from ec_recommend.platform.events.consumer import EffectScope
from ec_recommend.platform.events.envelope import Event

PRODUCT_EVENTS = ("product.created", "product.updated", "product.out_of_stock", "review.created")


def product_id_of(event: Event) -> str:
    data = event.data
    if isinstance(
        data, pb.ProductCreated | pb.ProductUpdated | pb.ProductOutOfStock | pb.ReviewCreated
    ):
        return data.product_id
    raise TypeError(f"{event.type} does not name a product")


async def current_product(
    products: pb_product.ProductServiceStub, product_id: str, scope: EffectScope | None = None
) -> pb_product.Product | None:
    """The product as ProductService has it now; None if it no longer exists.

    Within ``scope``, asked once per received batch (several events of one
    product in a batch all want its current state).
    """
    if scope is not None:
        return await scope.once(
            ("product", product_id), lambda: current_product(products, product_id)
        )
    try:
        return await products.get_product(pb_product.GetProductRequest(product_id=product_id))
    except NotFound:
        return None
