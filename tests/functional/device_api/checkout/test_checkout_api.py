"""Paying for a cart: cash with change, card for the exact total, mixed tenders, the
Idempotency-Key, sale numbers without gaps, every shopper role; declined cards."""

from __future__ import annotations

import re

import pytest

from tests.functional.conftest import STORE_ID, Live
from tests.functional.device_api.error_shape import (
    NO_SUCH,
    Case,
    World,
    after_decline,
    assert_error_path,
    declined_card,
    error_code,
    pay_cart,
)
from tests.functional.helpers import (
    MILK_CODE,
    RICE_CODE,
    SOAP_CODE,
    SOAP_UPC_A,
    checkout,
    day_report,
    key,
    new_cart,
    scan,
    sell,
)

SALE_NUMBER = re.compile(rf"^{STORE_ID}-\d{{6}}$")


def test_checkout_cash_over_the_total_returns_change(live: Live) -> None:
    before = day_report(live)
    pending = live.outbox_pending()
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, MILK_CODE, 2)
    cart = scan(live, cart_id, RICE_CODE)
    assert cart["totals"] == {"subtotal": 7490, "discount": 0, "tax": 206 + 412, "total": 7490}

    body = live.ok(checkout(live, cart_id, [{"method": "cash", "amount": 10000}]), 201)
    sale = body["sale"]
    assert SALE_NUMBER.match(sale["number"])
    assert sale["number"] == f"{STORE_ID}-{before['sales'] + 1:06d}"
    assert sale["cart_id"] == cart_id
    assert sale["channel"] == "kiosk"
    assert sale["currency"] == "CNY"
    assert (sale["subtotal"], sale["discount"], sale["tax"], sale["total"]) == (7490, 0, 618, 7490)
    assert (sale["paid"], sale["change"]) == (10000, 2510)
    assert sale["item_count"] == 3
    assert sale["device_id"] == live.device_ids["kiosk"]
    assert sale["approved_by"] is None
    assert sale["payments"] == [{"method": "cash", "amount": 10000, "reference": None}]
    assert [(line["sku"], line["quantity"], line["total"]) for line in sale["lines"]] == [
        ("MILK1L", 2, 2500),
        ("RICE5", 1, 4990),
    ]
    assert body["exit_pass"] is None
    receipt = body["receipt"]
    assert (receipt["sale_number"], receipt["total"], receipt["change"]) == (
        sale["number"],
        7490,
        2510,
    )

    # the cart is closed, the sale readable with its line ids
    assert live.ok(live.get(f"/api/v1/carts/{cart_id}", "kiosk"))["status"] == "checked_out"
    fetched = live.ok(live.get(f"/api/v1/sales/{sale['id']}", "kiosk"))
    assert fetched == sale
    assert all(line["id"] for line in fetched["lines"])
    assert len({line["id"] for line in fetched["lines"]}) == 2
    assert all(line["returned_quantity"] == line["refunded_amount"] == 0 for line in sale["lines"])
    assert live.outbox_pending() == pending + 1


def test_checkout_card_must_match_the_total_exactly(live: Live) -> None:
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, MILK_CODE)
    pending = live.outbox_pending()
    for amount in (1249, 1251):
        response = checkout(live, cart_id, [{"method": "card", "amount": amount}])
        assert error_code(live, response, 422) == "payment_mismatch"
    # cash short of the total is refused too
    response = checkout(live, cart_id, [{"method": "cash", "amount": 1000}])
    assert error_code(live, response, 422) == "payment_mismatch"
    assert live.outbox_pending() == pending
    assert live.ok(live.get(f"/api/v1/carts/{cart_id}", "kiosk"))["status"] == "open"

    sale = live.ok(checkout(live, cart_id, [{"method": "card", "amount": 1250}]), 201)["sale"]
    assert (sale["total"], sale["paid"], sale["change"]) == (1250, 1250, 0)
    assert sale["payments"][0]["method"] == "card"
    assert sale["payments"][0]["amount"] == 1250
    assert sale["payments"][0]["reference"]  # the acquirer's reference
    assert live.outbox_pending() == pending + 1


def test_checkout_mixed_card_and_cash(live: Live) -> None:
    cart_id = new_cart(live)["id"]
    cart = scan(live, cart_id, RICE_CODE)
    assert cart["totals"]["total"] == 4990
    payments = [{"method": "card", "amount": 3000}, {"method": "cash", "amount": 2000}]
    sale = live.ok(checkout(live, cart_id, payments), 201)["sale"]
    assert (sale["paid"], sale["change"]) == (5000, 10)
    assert sorted((p["method"], p["amount"]) for p in sale["payments"]) == [
        ("card", 3000),
        ("cash", 2000),
    ]


def test_idempotency_key_required_replayed_and_not_reusable(live: Live) -> None:
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, SOAP_CODE, 3)
    pending = live.outbox_pending()
    sales_before = day_report(live)["sales"]
    payment = {"payments": [{"method": "cash", "amount": 999}]}

    response = live.post(f"/api/v1/carts/{cart_id}/checkout", "kiosk", json=payment)
    assert error_code(live, response, 422) == "idempotency_key_required"
    assert live.outbox_pending() == pending

    k = key()
    first = live.ok(checkout(live, cart_id, [{"method": "cash", "amount": 999}], "kiosk", k), 201)
    again = live.ok(checkout(live, cart_id, [{"method": "cash", "amount": 999}], "kiosk", k), 201)
    assert again["sale"]["id"] == first["sale"]["id"]
    assert again["sale"]["number"] == first["sale"]["number"]
    assert again == first
    assert live.outbox_pending() == pending + 1
    assert day_report(live)["sales"] == sales_before + 1

    other = new_cart(live)["id"]
    scan(live, other, SOAP_CODE)
    response = checkout(live, other, [{"method": "cash", "amount": 333}], "kiosk", k)
    body = live.ok(response, 409)
    assert body["error"]["code"] == "idempotency_key_reused"
    assert live.ok(live.get(f"/api/v1/carts/{other}", "kiosk"))["status"] == "open"
    assert live.outbox_pending() == pending + 1


def test_sale_numbers_increase_by_one_without_gaps(live: Live) -> None:
    start = day_report(live)["sales"]
    numbers = []
    for barcode in (MILK_CODE, SOAP_CODE, RICE_CODE, SOAP_UPC_A):
        numbers.append(sell(live, [(barcode, 1)])["sale"]["number"])
        # a refused checkout in between must not use up a number
        cart_id = new_cart(live)["id"]
        scan(live, cart_id, MILK_CODE)
        response = checkout(live, cart_id, [{"method": "card", "amount": 1}])
        assert error_code(live, response, 422) == "payment_mismatch"
    assert numbers == [f"{STORE_ID}-{n:06d}" for n in range(start + 1, start + 5)]


@pytest.mark.parametrize("role", ["kiosk", "phone", "tablet", "manager"])
def test_every_shopper_role_can_sell(live: Live, role: str) -> None:
    channel = "scan_to_buy" if role == "phone" else "kiosk"
    body = sell(live, [(SOAP_CODE, 1)], role=role, channel=channel, method="card")
    assert body["sale"]["device_id"] == live.device_ids[role]
    assert body["sale"]["total"] == 333
    assert (body["exit_pass"] is not None) is (channel == "scan_to_buy")


ERRORS = [
    # --- 404: no such thing ---
    Case(
        "unknown_cart_checkout",
        404,
        "unknown_cart",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 1250}], cart=NO_SUCH),
    ),
    # --- 409: conflicts with the state of things ---
    Case(
        "idempotency_key_reused",
        409,
        "idempotency_key_reused",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 1250}], idem=w.sale_key),
    ),
    Case(
        "cart_closed_checkout",
        409,
        "cart_closed",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 2833}], cart=w.closed_cart),
    ),
    Case(
        "cart_empty",
        409,
        "cart_empty",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 100}], cart=w.empty_cart),
    ),
    # --- 422: well-formed JSON that does not make sense ---
    Case(
        "payment_mismatch_card_short",
        422,
        "payment_mismatch",
        lambda w: pay_cart(w, [{"method": "card", "amount": 1249}]),
    ),
    Case(
        "payment_mismatch_card_over",
        422,
        "payment_mismatch",
        lambda w: pay_cart(w, [{"method": "card", "amount": 1251}]),
    ),
    Case(
        "payment_mismatch_cash_short",
        422,
        "payment_mismatch",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 1000}]),
    ),
    Case(
        "payment_mismatch_card_plus_cash_card_over",
        422,
        "payment_mismatch",
        lambda w: pay_cart(
            w, [{"method": "card", "amount": 1300}, {"method": "cash", "amount": 50}]
        ),
    ),
    Case(
        "idempotency_key_required",
        422,
        "idempotency_key_required",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 1250}], idem=None),
    ),
    Case(
        "idempotency_key_blank",
        422,
        "bad_idempotency_key",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 1250}], idem=""),
    ),
    Case(
        "idempotency_key_too_long",
        422,
        "bad_idempotency_key",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 1250}], idem="k" * 129),
    ),
    Case(
        "payments_empty",
        422,
        "validation_error",
        lambda w: pay_cart(w, []),
        field="payments",
    ),
    Case(
        "payments_missing",
        422,
        "validation_error",
        lambda w: pay_cart(w, {}),
        field="payments",
    ),
    Case(
        "payment_method_unknown",
        422,
        "validation_error",
        lambda w: pay_cart(w, [{"method": "bitcoin", "amount": 1250}]),
        field="payments.0.method",
    ),
    Case(
        "payment_amount_zero",
        422,
        "validation_error",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 0}]),
        field="payments.0.amount",
    ),
    Case(
        "payment_amount_string",
        422,
        "validation_error",
        lambda w: pay_cart(w, [{"method": "cash", "amount": "1250"}]),
        field="payments.0.amount",
    ),
    Case(
        "payment_amount_float",
        422,
        "validation_error",
        lambda w: pay_cart(w, [{"method": "cash", "amount": 12.5}]),
        field="payments.0.amount",
    ),
    # --- 402: the acquirer says no ---
    Case("payment_declined", 402, "payment_declined", declined_card, then=after_decline),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
