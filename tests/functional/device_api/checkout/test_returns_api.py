"""Returns: partial refunds that add up exactly and restock, refunds that follow the tenders,
retries with an Idempotency-Key."""

from __future__ import annotations

import pytest

from tests.functional.conftest import Live
from tests.functional.device_api.error_shape import (
    NO_SUCH,
    Case,
    World,
    after_partial_return,
    assert_error_path,
    error_code,
    one_line,
    post,
    return_lines,
)
from tests.functional.helpers import (
    MILK_CODE,
    RICE_CODE,
    SOAP_CODE,
    checkout,
    half_up_div,
    key,
    largest_remainder,
    new_cart,
    scan,
    sell,
    stock,
)


def test_partial_returns_refund_exactly_and_restock(live: Live) -> None:
    soap_before = stock(live, "SOAP")
    body = sell(live, [(SOAP_CODE, 2), (MILK_CODE, 1)])
    sale = body["sale"]
    soap_line = next(line for line in sale["lines"] if line["sku"] == "SOAP")
    assert soap_line["total"] == 666
    assert stock(live, "SOAP") == soap_before - 2
    pending = live.outbox_pending()
    url = f"/api/v1/sales/{sale['id']}/returns"
    one = {"lines": [{"line_id": soap_line["id"], "quantity": 1}], "reason": "damaged"}

    assert error_code(live, live.post(url, "kiosk", json=one), 403) == "forbidden"
    assert error_code(live, live.post(url, "phone", json=one), 403) == "forbidden"

    first = live.ok(live.post(url, "handheld", json=one), 201)["return"]
    assert first["sale_id"] == sale["id"]
    assert first["reason"] == "damaged"
    assert first["refund_total"] == half_up_div(666 * 1, 2) == 333
    assert first["lines"] == [{"line_id": soap_line["id"], "quantity": 1, "amount": 333}]
    assert first["refunds"] == [{"method": "cash", "amount": 333}]
    assert stock(live, "SOAP") == soap_before - 1
    assert live.outbox_pending() == pending + 1

    rest = live.ok(live.post(url, "manager", json=one), 201)["return"]
    assert rest["refund_total"] == 333
    assert first["refund_total"] + rest["refund_total"] == soap_line["total"]
    assert stock(live, "SOAP") == soap_before
    assert live.outbox_pending() == pending + 2

    body = live.ok(live.post(url, "tablet", json=one), 409)
    assert body["error"]["code"] == "return_exceeds_sale"
    assert body["error"]["details"]["returnable"] == 0
    assert stock(live, "SOAP") == soap_before
    assert live.outbox_pending() == pending + 2

    fetched = live.ok(live.get(f"/api/v1/sales/{sale['id']}", "handheld"))
    line = next(line for line in fetched["lines"] if line["id"] == soap_line["id"])
    assert (line["returned_quantity"], line["refunded_amount"]) == (2, 666)
    milk = next(line for line in fetched["lines"] if line["sku"] == "MILK1L")
    assert (milk["returned_quantity"], milk["refunded_amount"]) == (0, 0)


def test_return_refunds_follow_the_tenders(live: Live) -> None:
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, SOAP_CODE, 2)
    cart = scan(live, cart_id, MILK_CODE)
    assert cart["totals"]["total"] == 1916
    payments = [{"method": "card", "amount": 1000}, {"method": "cash", "amount": 1000}]
    sale = live.ok(checkout(live, cart_id, payments), 201)["sale"]
    assert sale["change"] == 84
    milk = next(line for line in sale["lines"] if line["sku"] == "MILK1L")
    ret = live.ok(
        live.post(
            f"/api/v1/sales/{sale['id']}/returns",
            "manager",
            json={"lines": [{"line_id": milk["id"], "quantity": 1}], "reason": "expired"},
        ),
        201,
    )["return"]
    assert ret["refund_total"] == 1250
    # card paid 1000, cash really paid 1000 - 84 change = 916
    card_share, cash_share = largest_remainder(1250, [1000, 916])
    assert sorted((r["method"], r["amount"]) for r in ret["refunds"]) == [
        ("card", card_share),
        ("cash", cash_share),
    ]
    assert sum(r["amount"] for r in ret["refunds"]) == 1250


def test_return_retry_with_idempotency_key_returns_the_first_result(live: Live) -> None:
    sale = sell(live, [(RICE_CODE, 3)])["sale"]
    line = sale["lines"][0]
    url = f"/api/v1/sales/{sale['id']}/returns"
    body = {"lines": [{"line_id": line["id"], "quantity": 1}], "reason": "changed mind"}
    headers = {"Idempotency-Key": key()}
    rice_before = stock(live, "RICE5")
    pending = live.outbox_pending()

    first = live.ok(live.post(url, "handheld", json=body, headers=headers), 201)
    again = live.ok(live.post(url, "handheld", json=body, headers=headers), 201)
    assert again["return"]["id"] == first["return"]["id"]
    assert stock(live, "RICE5") == rice_before + 1
    assert live.outbox_pending() == pending + 1
    fetched = live.ok(live.get(f"/api/v1/sales/{sale['id']}", "handheld"))
    assert fetched["lines"][0]["returned_quantity"] == 1
    # "a retry returns the first result" (DESIGN.md section 3): the whole body, refunds included
    assert first["return"]["refunds"] == [{"method": "cash", "amount": 4990}]
    assert again["return"].get("refunds") == first["return"]["refunds"], again
    assert again == first


ERRORS = [
    # --- 403: the wrong role ---
    Case(
        "kiosk_returns",
        403,
        "forbidden",
        lambda w: post(f"/api/v1/sales/{w.sale}/returns", one_line(w.sale_soap_line), "kiosk"),
    ),
    # --- 404: no such thing ---
    Case(
        "unknown_sale_return",
        404,
        "unknown_sale",
        lambda w: return_lines(w, one_line(w.sale_soap_line), sale=NO_SUCH),
    ),
    Case(
        "return_line_of_another_sale",
        404,
        "unknown_line",
        lambda w: return_lines(w, one_line(w.other_sale_line)),
    ),
    # --- 409: conflicts with the state of things ---
    Case(
        "return_exceeds_sale",
        409,
        "return_exceeds_sale",
        lambda w: return_lines(w, one_line(w.sale_milk_line, 2)),
    ),
    Case(
        "return_exceeds_sale_after_a_good_line",
        409,
        "return_exceeds_sale",
        lambda w: return_lines(
            w,
            {
                "lines": [
                    {"line_id": w.sale_soap_line, "quantity": 1},
                    {"line_id": w.sale_milk_line, "quantity": 5},
                ],
                "reason": "damaged",
            },
        ),
        then=after_partial_return,
    ),
    Case(
        "return_idempotency_key_reused",
        409,
        "idempotency_key_reused",
        lambda w: return_lines(
            w,
            one_line(w.other_sale_line),
            sale=w.other_sale,
            headers={"Idempotency-Key": w.return_key},
        ),
    ),
    # --- 422: well-formed JSON that does not make sense ---
    Case(
        "return_reason_empty",
        422,
        "validation_error",
        lambda w: return_lines(w, one_line(w.sale_soap_line, 1, reason="")),
        field="reason",
    ),
    Case(
        "return_reason_blank",
        422,
        "reason_required",
        lambda w: return_lines(w, one_line(w.sale_soap_line, 1, reason="   ")),
        field="reason",
    ),
    Case(
        "return_no_lines",
        422,
        "validation_error",
        lambda w: return_lines(w, {"lines": [], "reason": "damaged"}),
        field="lines",
    ),
    Case(
        "return_quantity_zero",
        422,
        "validation_error",
        lambda w: return_lines(w, one_line(w.sale_soap_line, 0)),
        field="lines.0.quantity",
    ),
    Case(
        "return_quantity_string",
        422,
        "validation_error",
        lambda w: return_lines(w, one_line(w.sale_soap_line, "1")),
        field="lines.0.quantity",
    ),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
