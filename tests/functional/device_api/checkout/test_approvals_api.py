"""Age-restricted items: an attendant's approval before checkout, and again for a new scan."""

from __future__ import annotations

import pytest

from tests.functional.conftest import Live
from tests.functional.device_api.error_shape import (
    Case,
    World,
    assert_error_path,
    error_code,
    pay_cart,
    post,
)
from tests.functional.helpers import BAIJIU_CODE, MILK_CODE, checkout, new_cart, scan, tax_in


def test_age_restricted_items_need_an_attendant(live: Live) -> None:
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, MILK_CODE)
    cart = scan(live, cart_id, BAIJIU_CODE)
    assert (cart["approval"]["required"], cart["approval"]["approved"]) == (True, False)
    total = cart["totals"]["total"]
    assert total == 1250 + 19900
    assert cart["totals"]["tax"] == tax_in(1250, 900) + tax_in(19900, 1300)
    pay = [{"method": "cash", "amount": total}]

    body = live.ok(checkout(live, cart_id, pay), 409)
    assert body["error"]["code"] == "approval_required"
    assert body["error"]["details"]["skus"] == ["BAIJIU"]

    # a kiosk (or a phone) cannot approve itself
    for role in ("kiosk", "phone", "handheld"):
        response = live.post(f"/api/v1/carts/{cart_id}/approvals", role, json={})
        assert error_code(live, response, 403) == "forbidden"
    approved = live.ok(live.post(f"/api/v1/carts/{cart_id}/approvals", "tablet", json={}))
    assert (approved["approval"]["required"], approved["approval"]["approved"]) == (True, True)
    assert approved["approval"]["approved_by"] == live.device_ids["tablet"]
    baijiu = next(line for line in approved["lines"] if line["sku"] == "BAIJIU")
    assert approved["approval"]["lines"] == [{"line_id": baijiu["id"], "quantity": 1}]

    # a new restricted scan needs a new look
    cart = scan(live, cart_id, BAIJIU_CODE)
    assert (cart["approval"]["required"], cart["approval"]["approved"]) == (True, False)
    assert error_code(live, checkout(live, cart_id, pay), 409) == "approval_required"
    live.ok(live.post(f"/api/v1/carts/{cart_id}/approvals", "manager", json={"note": "ID seen"}))

    pay = [{"method": "cash", "amount": cart["totals"]["total"]}]
    sale = live.ok(checkout(live, cart_id, pay), 201)["sale"]
    assert sale["approved_by"] == live.device_ids["manager"]
    assert sale["total"] == 1250 + 2 * 19900


ERRORS = [
    # --- 403: the wrong role ---
    Case(
        "kiosk_approves",
        403,
        "forbidden",
        lambda w: post(f"/api/v1/carts/{w.age_cart}/approvals", {}, "kiosk"),
    ),
    Case(
        "phone_approves",
        403,
        "forbidden",
        lambda w: post(f"/api/v1/carts/{w.phone_cart}/approvals", {}, "phone"),
    ),
    # --- 409: conflicts with the state of things ---
    Case(
        "approval_required",
        409,
        "approval_required",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 19900}], cart=w.age_cart),
    ),
    Case(
        "cart_closed_approve",
        409,
        "cart_closed",
        lambda w: post(f"/api/v1/carts/{w.closed_cart}/approvals", {}, "tablet"),
    ),
    # --- 422: well-formed JSON that does not make sense ---
    Case(
        "approval_unknown_field",
        422,
        "validation_error",
        lambda w: post(f"/api/v1/carts/{w.age_cart}/approvals", {"age": 30}, "tablet"),
        field="age",
    ),
    Case(
        "approval_note_too_long",
        422,
        "validation_error",
        lambda w: post(f"/api/v1/carts/{w.age_cart}/approvals", {"note": "n" * 201}, "tablet"),
        field="note",
    ),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
