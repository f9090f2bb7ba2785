"""Cart rules without I/O: whose cart, quantities, what can be added."""

from __future__ import annotations

import uuid

import pytest

from ec_recommend.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from ec_recommend.platform.rpc.context import Identity
from ec_recommend.services.cart import domain


def test_users_get_their_own_cart_admins_and_internal_callers_name_one() -> None:
    other = str(uuid.uuid4())
    assert domain.cart_owner(Identity("me"), "") == "me"
    assert domain.cart_owner(Identity("me"), "me") == "me"
    with pytest.raises(NotFound):
        domain.cart_owner(Identity("me"), other)
    assert domain.cart_owner(Identity("a", roles=frozenset({"admin"})), other) == other
    assert domain.cart_owner(None, other) == other
    with pytest.raises(InvalidArgument):
        domain.cart_owner(None, "")


@pytest.mark.parametrize(
    ("quantity", "allow_zero", "ok"),
    [
        (1, False, True),
        (0, False, False),
        (0, True, True),
        (-1, True, False),
        (999, False, True),
        (1000, False, False),
    ],
)
def test_quantity_bounds(quantity: int, allow_zero: bool, ok: bool) -> None:
    if ok:
        assert domain.validate_quantity(quantity, allow_zero=allow_zero) == quantity
    else:
        with pytest.raises(InvalidArgument):
            domain.validate_quantity(quantity, allow_zero=allow_zero)


def test_addable_checks_existence_archive_and_stock() -> None:
    domain.check_addable("p", status="active", available=3, wanted=3)
    with pytest.raises(NotFound):
        domain.check_addable("p", status=None, available=0, wanted=1)
    with pytest.raises(FailedPrecondition) as archived:
        domain.check_addable("p", status="archived", available=5, wanted=1)
    assert archived.value.details["reason"] == "product_archived"
    with pytest.raises(FailedPrecondition) as short:
        domain.check_addable("p", status="active", available=3, wanted=4)
    assert short.value.details == {
        "product_id": "p",
        "reason": "insufficient_stock",
        "available": "3",
        "requested": "4",
    }
