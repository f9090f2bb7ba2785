"""betterproto2 messages as the REST contract's JSON."""

from __future__ import annotations

from datetime import UTC, datetime

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.edge.gateway.transcode import message_schema, message_to_json


def test_product_json_matches_the_contract() -> None:
    product = pb.Product(
        id="p1",
        seller_id="s1",
        name="n",
        base_price=pb_common.Money(amount=10**11, currency="JPY"),
        stock_quantity=3,
        status="active",
        images=[pb.ProductImage(url="https://x.example/a.png")],
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    data = message_to_json(product)
    assert data["base_price"] == {"amount": 10**11, "currency": "JPY"}  # a number, not a string
    assert data["sale_price"] is None
    assert data["images"] == [{"url": "https://x.example/a.png", "alt_text": ""}]
    assert data["created_at"] == "2026-01-02T03:04:05Z"
    assert data["updated_at"] is None
    assert data["description"] == ""  # every field present


def test_maps_and_schemas() -> None:
    profile = pb_user.UserProfile(user_id="u", preferences={"lang": "ja"})
    assert message_to_json(profile)["preferences"] == {"lang": "ja"}
    components: dict[str, dict[str, object]] = {}
    ref = message_schema(pb.Product, components)
    assert ref == {"$ref": "#/components/schemas/Product"}
    assert {"Product", "Money", "ProductImage"} <= set(components)
    properties = components["Product"]["properties"]
    assert properties["created_at"] == {  # type: ignore[index]
        "oneOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]
    }
