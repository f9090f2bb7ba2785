"""Request schemas: validation names the field; JSON Schema mirrors the rules."""

from __future__ import annotations

import pytest

from ec_recommend.edge.gateway.handlers.cart import ADD_ITEM
from ec_recommend.edge.gateway.handlers.orders import CREATE_ORDER
from ec_recommend.edge.gateway.handlers.products import CREATE_PRODUCT, UPDATE_PRODUCT
from ec_recommend.edge.gateway.schema import Boolean, Integer, page_query
from ec_recommend.platform.errors import InvalidArgument


def field_of(schema: object, value: object) -> str:
    with pytest.raises(InvalidArgument) as caught:
        schema.validate(value, "")  # type: ignore[attr-defined]
    return caught.value.details["field"]


def test_product_body_errors_name_the_field() -> None:
    good = {"name": "x", "base_price": {"amount": 1}, "stock_quantity": 0}
    assert CREATE_PRODUCT.validate(good, "") == good
    assert field_of(CREATE_PRODUCT, [good]) == "body"
    assert field_of(CREATE_PRODUCT, {**good, "x": 1}) == "x"
    assert field_of(CREATE_PRODUCT, {"name": "x", "base_price": {"amount": 1}}) == "stock_quantity"
    assert field_of(CREATE_PRODUCT, {**good, "stock_quantity": True}) == "stock_quantity"
    assert field_of(CREATE_PRODUCT, {**good, "stock_quantity": 2**31}) == "stock_quantity"
    assert field_of(CREATE_PRODUCT, {**good, "name": "a\x00b"}) == "name"
    assert field_of(CREATE_PRODUCT, {**good, "name": "\ud800"}) == "name"
    assert field_of(CREATE_PRODUCT, {**good, "images": [{}]}) == "images[0].url"
    assert field_of(CREATE_PRODUCT, {**good, "base_price": {"amount": 1.5}}) == "base_price.amount"
    assert CREATE_PRODUCT.validate({**good, "stock_quantity": 3.0}, "")["stock_quantity"] == 3


def test_null_is_refused_except_where_it_means_remove() -> None:
    good = {"name": "x", "base_price": {"amount": 1}, "stock_quantity": 0}
    assert field_of(CREATE_PRODUCT, {**good, "sale_price": None}) == "sale_price"
    assert field_of(CREATE_PRODUCT, {**good, "stock_quantity": None}) == "stock_quantity"
    product_id = "2f6a2b8e-8f5c-4a52-9d8e-3f1c6a7b9d10"
    assert field_of(ADD_ITEM, {"product_id": product_id, "quantity": None}) == "quantity"  # not 1
    assert UPDATE_PRODUCT.validate({"sale_price": None}, "") == {"sale_price": None}
    assert "oneOf" not in ADD_ITEM.json_schema()["properties"]["quantity"]


def test_exactly_one_of() -> None:
    assert CREATE_ORDER.validate({"from_cart": True}, "") == {"from_cart": True}
    assert field_of(CREATE_ORDER, {}) == "items"
    line = {"product_id": "2f6a2b8e-8f5c-4a52-9d8e-3f1c6a7b9d10", "quantity": 1}
    both = {"from_cart": True, "items": [line]}
    assert field_of(CREATE_ORDER, both) == "items"
    assert field_of(CREATE_ORDER, {"from_cart": False}) == "from_cart"
    assert field_of(CREATE_ORDER, {"items": [line, line]}) == "items[1].product_id"


def test_what_the_server_enforces_is_in_the_document() -> None:
    from ec_recommend.edge.gateway.handlers.products import IMAGE, UPDATE_STOCK
    from ec_recommend.edge.gateway.handlers.search import SEARCH_QUERY
    from ec_recommend.edge.gateway.schema import EMAIL, ID

    assert ID.json_schema()["format"] == "uuid" and "pattern" in ID.json_schema()
    assert field_of(ID, "not-an-id") == "body"
    assert EMAIL.json_schema()["format"] == "email"
    assert field_of(EMAIL, "a@b.com*") == "body"
    url = IMAGE.json_schema()["properties"]["url"]
    assert url["format"] == "uri" and url["pattern"].startswith("^https?://")
    assert field_of(IMAGE, {"url": "ftp://example.com/a.png"}) == "url"
    assert CREATE_PRODUCT.constraints("body") == [
        {"at_most": ["body.sale_price.amount", "body.base_price.amount"]}
    ]
    too_high = {"name": "x", "base_price": {"amount": 1}, "sale_price": {"amount": 2}}
    assert field_of(CREATE_PRODUCT, {**too_high, "stock_quantity": 0}) == "sale_price.amount"
    prices = ["query.min_price", "query.max_price"]
    assert SEARCH_QUERY.constraints("query") == [{"at_most": prices}]
    with pytest.raises(InvalidArgument):
        SEARCH_QUERY.parse_query({"min_price": "5", "max_price": "4"})
    assert CREATE_ORDER.constraints("body") == [{"unique": ["body.items", "product_id"]}]
    assert UPDATE_STOCK.json_schema()["oneOf"] == [
        {"required": ["delta"]},
        {"required": ["quantity"]},
    ]


def test_query_parsing() -> None:
    query = page_query(("name",), in_stock=Boolean())
    parsed = query.parse_query({"page": "2", "page_size": "100", "in_stock": "true"})
    assert parsed == {"page": 2, "page_size": 100, "in_stock": True}
    for text, name in (("101", "page_size"), ("-1", "page_size"), ("1e3", "page_size")):
        with pytest.raises(InvalidArgument) as caught:
            query.parse_query({name: text})
        assert caught.value.details["field"] == name
    with pytest.raises(InvalidArgument):
        query.parse_query({"sort_by": "price"})
    assert Integer(0, 10).parse_text(" 7 ", "n") == 7


def test_json_schema_mirrors_the_rules() -> None:
    schema = CREATE_PRODUCT.json_schema()
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name", "base_price", "stock_quantity"]
    assert schema["properties"]["name"] == {
        "type": "string",
        "maxLength": 200,
        "minLength": 1,
        "pattern": "^[^\\u0000]*$",  # NUL is refused in every string
    }
    stock = schema["properties"]["stock_quantity"]
    assert stock == {"type": "integer", "minimum": 0, "maximum": 1_000_000_000}
    sale = UPDATE_PRODUCT.json_schema()["properties"]["sale_price"]
    assert {"type": "null"} in sale["oneOf"]


def test_service_errors_map_to_the_contract_table() -> None:
    from ec_recommend.edge.gateway.http_errors import service_error_response
    from ec_recommend.platform import errors

    cases = [
        (errors.InvalidArgument("bad", field="x"), 400, "INVALID_REQUEST"),
        (errors.Unauthenticated("who"), 401, "UNAUTHORIZED"),
        (errors.PaymentDeclined("no"), 402, "PAYMENT_DECLINED"),
        (errors.PermissionDenied("no"), 403, "FORBIDDEN"),
        (errors.NotFound("gone"), 404, "NOT_FOUND"),
        (errors.AlreadyExists("dup"), 409, "CONFLICT"),
        (errors.Aborted("race"), 409, "CONFLICT"),
        (errors.FailedPrecondition("short", product_id="p"), 409, "CONFLICT"),
        (errors.ResourceExhausted("slow down"), 429, "RATE_LIMITED"),
        (errors.Internal("db exploded at 10.0.0.1"), 500, "INTERNAL_ERROR"),
        (errors.Unavailable("10.0.0.7:50051 refused"), 503, "SERVICE_UNAVAILABLE"),
        (errors.DeadlineExceeded("slow"), 504, "TIMEOUT"),
    ]
    for error, status, code in cases:
        response = service_error_response(error, "rid")
        assert response.status == status, error
        body = response.body
        assert isinstance(body, bytes)
        assert f'"code":"{code}"'.encode() in body
        assert b"10.0.0" not in body  # transport and internal details never leak
    conflict = service_error_response(
        errors.FailedPrecondition("short", product_id="p", reason="insufficient_stock"), "rid"
    )
    assert b'"details":{"product_id":"p","reason":"insufficient_stock"}' in conflict.body  # type: ignore[operator]
    assert service_error_response(errors.ResourceExhausted("x"), "r").headers["Retry-After"] == "1"
