"""Carts: opened on both channels, lines scanned, merged, changed and removed with exact totals,
and private to the phone that opened them."""

from __future__ import annotations

import pytest

from tests.builders import weighed_code
from tests.functional.conftest import Live
from tests.functional.device_api.error_shape import (
    NO_SUCH,
    Case,
    Req,
    World,
    add_line,
    assert_error_path,
    error_code,
    patch_line,
    post,
    raw,
)
from tests.functional.helpers import (
    APPLE_PLU,
    MILK_CODE,
    PRICE,
    RATE_BP,
    RICE_CODE,
    SOAP_CODE,
    SOAP_UPC_A,
    checkout,
    expected_totals,
    new_cart,
    scan,
    tax_in,
)


def test_create_cart_on_both_channels(live: Live) -> None:
    kiosk = new_cart(live, "kiosk", "kiosk")
    phone = new_cart(live, "phone", "scan_to_buy")
    for cart, channel in ((kiosk, "kiosk"), (phone, "scan_to_buy")):
        assert cart["channel"] == channel
        assert cart["status"] == "open"
        assert cart["currency"] == "CNY"
        assert cart["lines"] == []
        assert cart["totals"] == {"subtotal": 0, "discount": 0, "tax": 0, "total": 0}
        assert cart["item_count"] == 0
        assert cart["approval"]["required"] is False
        assert cart["approval"]["approved"] is False
        assert cart["approval"]["lines"] == []
    assert kiosk["id"] != phone["id"]
    assert live.ok(live.get(f"/api/v1/carts/{phone['id']}", "phone")) == phone
    # a phone shops with scan_to_buy carts only
    response = live.post("/api/v1/carts", "phone", json={"channel": "kiosk"})
    assert error_code(live, response, 403) == "forbidden"


def test_cart_lines_merge_change_and_remove_with_exact_totals(live: Live) -> None:
    pending = live.outbox_pending()
    cart_id = new_cart(live)["id"]

    cart = scan(live, cart_id, MILK_CODE)
    assert len(cart["lines"]) == 1
    milk = cart["lines"][0]
    assert milk["quantity"] == 1
    assert cart["totals"] == {"subtotal": 1250, "discount": 0, "tax": 103, "total": 1250}

    # The same item scanned again adds to its line.
    cart = scan(live, cart_id, MILK_CODE)
    assert [line["id"] for line in cart["lines"]] == [milk["id"]]
    assert cart["lines"][0]["quantity"] == 2
    assert cart["totals"]["tax"] == tax_in(2500, 900) == 206
    cart = scan(live, cart_id, MILK_CODE, quantity=3)
    assert cart["lines"][0]["quantity"] == 5

    # SOAP by its UPC-A and by its EAN-13 is one product: one line of two.
    scan(live, cart_id, SOAP_UPC_A)
    cart = scan(live, cart_id, SOAP_CODE)
    cart = scan(live, cart_id, RICE_CODE, quantity=2)
    assert [line["sku"] for line in cart["lines"]] == ["MILK1L", "SOAP", "RICE5"]
    soap = cart["lines"][1]
    assert soap["quantity"] == 2
    assert soap["barcode"] == SOAP_UPC_A
    assert cart["totals"] == expected_totals(
        [("MILK1L", 1250, 5), ("SOAP", 333, 2), ("RICE5", 4990, 2)]
    )
    assert cart["item_count"] == 9

    # Two scale labels are two lines, each priced from its label.
    scan(live, cart_id, weighed_code(APPLE_PLU, 1234))
    cart = scan(live, cart_id, weighed_code(APPLE_PLU, 1234))
    apples = [line for line in cart["lines"] if line["sku"] == "APPLE"]
    assert len(apples) == 2
    assert all(a["price"] == 1234 and a["weight_g"] == 781 for a in apples)

    rice = next(line for line in cart["lines"] if line["sku"] == "RICE5")
    cart = live.ok(
        live.patch(f"/api/v1/carts/{cart_id}/lines/{milk['id']}", "kiosk", json={"quantity": 2})
    )
    cart = live.ok(live.delete(f"/api/v1/carts/{cart_id}/lines/{rice['id']}", "kiosk"))
    cart = live.ok(live.delete(f"/api/v1/carts/{cart_id}/lines/{apples[1]['id']}", "kiosk"))
    assert [(line["sku"], line["quantity"]) for line in cart["lines"]] == [
        ("MILK1L", 2),
        ("SOAP", 2),
        ("APPLE", 1),
    ]
    expected = expected_totals([("MILK1L", 1250, 2), ("SOAP", 333, 2), ("APPLE", 1234, 1)])
    assert expected == {"subtotal": 4400, "discount": 0, "tax": 206 + 77 + 102, "total": 4400}
    assert cart["totals"] == expected
    for line in cart["lines"]:
        assert line["subtotal"] == line["price"] * line["quantity"]
        assert line["discount"] == 0
        assert line["total"] == line["subtotal"]
        assert line["tax"] == tax_in(line["total"], RATE_BP[line["sku"]])
        assert line["tax_rate_bp"] == RATE_BP[line["sku"]]
        if line["sku"] != "APPLE":
            assert line["unit_price"] == line["price"] == PRICE[line["sku"]]
    assert cart["item_count"] == 5

    # GET shows the same cart; cart edits are not events for HQ.
    assert live.ok(live.get(f"/api/v1/carts/{cart_id}", "kiosk")) == cart
    assert live.outbox_pending() == pending


def test_auth_and_cart_privacy_between_phones(live: Live) -> None:
    cart = new_cart(live, "phone", "scan_to_buy")
    scan(live, cart["id"], MILK_CODE, role="phone")
    assert error_code(live, live.get(f"/api/v1/carts/{cart['id']}"), 401) == "unauthorized"
    bad = live.get(f"/api/v1/carts/{cart['id']}", headers={"Authorization": "Bearer nope"})
    assert error_code(live, bad, 401) == "unauthorized"
    # another phone cannot see, scan into or pay for it: as if it did not exist
    other = live.get(f"/api/v1/carts/{cart['id']}", "phone2")
    assert error_code(live, other, 404) == "unknown_cart"
    other = live.post(f"/api/v1/carts/{cart['id']}/lines", "phone2", json={"barcode": MILK_CODE})
    assert error_code(live, other, 404) == "unknown_cart"
    other = checkout(live, cart["id"], [{"method": "card", "amount": 1250}], role="phone2")
    assert error_code(live, other, 404) == "unknown_cart"
    # nor can a self-checkout kiosk, which shoppers use too; the owner still sees one milk,
    # and staff may help with the cart
    other = live.get(f"/api/v1/carts/{cart['id']}", "kiosk")
    assert error_code(live, other, 404) == "unknown_cart"
    assert live.ok(live.get(f"/api/v1/carts/{cart['id']}", "phone"))["item_count"] == 1
    assert live.ok(live.get(f"/api/v1/carts/{cart['id']}", "tablet"))["item_count"] == 1


ERRORS = [
    # --- 403: the wrong role ---
    Case(
        "handheld_opens_cart",
        403,
        "forbidden",
        lambda w: post("/api/v1/carts", {"channel": "kiosk"}, "handheld"),
    ),
    Case(
        "exit_opens_cart",
        403,
        "forbidden",
        lambda w: post("/api/v1/carts", {"channel": "scan_to_buy"}, "exit"),
    ),
    Case(
        "phone_opens_kiosk_cart",
        403,
        "forbidden",
        lambda w: post("/api/v1/carts", {"channel": "kiosk"}, "phone"),
    ),
    # --- 404: no such thing ---
    Case("unknown_cart", 404, "unknown_cart", lambda w: Req("GET", f"/api/v1/carts/{NO_SUCH}")),
    Case(
        "unknown_cart_scan",
        404,
        "unknown_cart",
        lambda w: add_line(w, {"barcode": MILK_CODE}, cart=NO_SUCH),
    ),
    Case(
        "other_phones_cart",
        404,
        "unknown_cart",
        lambda w: Req("GET", f"/api/v1/carts/{w.phone_cart}", "phone2"),
    ),
    Case(
        "unknown_line_patch",
        404,
        "unknown_line",
        lambda w: patch_line(w, {"quantity": 2}, line=NO_SUCH),
    ),
    Case(
        "unknown_line_delete",
        404,
        "unknown_line",
        lambda w: Req("DELETE", f"/api/v1/carts/{w.open_cart}/lines/{NO_SUCH}"),
    ),
    Case(
        "line_of_another_cart",
        404,
        "unknown_line",
        lambda w: patch_line(w, {"quantity": 2}, line=w.big_line),
    ),
    # --- 409: conflicts with the state of things ---
    Case(
        "cart_closed_scan",
        409,
        "cart_closed",
        lambda w: add_line(w, {"barcode": MILK_CODE}, cart=w.closed_cart),
    ),
    Case(
        "cart_closed_patch",
        409,
        "cart_closed",
        lambda w: patch_line(w, {"quantity": 1}, cart=w.closed_cart, line=w.closed_line),
    ),
    Case(
        "cart_closed_delete",
        409,
        "cart_closed",
        lambda w: Req("DELETE", f"/api/v1/carts/{w.closed_cart}/lines/{w.closed_line}"),
    ),
    # --- 422: well-formed JSON that does not make sense ---
    Case(
        "quantity_string",
        422,
        "validation_error",
        lambda w: add_line(w, {"barcode": MILK_CODE, "quantity": "2"}),
        field="quantity",
    ),
    Case(
        "quantity_zero",
        422,
        "validation_error",
        lambda w: add_line(w, {"barcode": MILK_CODE, "quantity": 0}),
        field="quantity",
    ),
    Case(
        "quantity_10000",
        422,
        "validation_error",
        lambda w: add_line(w, {"barcode": MILK_CODE, "quantity": 10_000}),
        field="quantity",
    ),
    Case(
        "quantity_negative",
        422,
        "validation_error",
        lambda w: add_line(w, {"barcode": MILK_CODE, "quantity": -1}),
        field="quantity",
    ),
    Case(
        "quantity_float",
        422,
        "validation_error",
        lambda w: add_line(w, {"barcode": MILK_CODE, "quantity": 2.5}),
        field="quantity",
    ),
    Case(
        "quantity_bool",
        422,
        "validation_error",
        lambda w: add_line(w, {"barcode": MILK_CODE, "quantity": True}),
        field="quantity",
    ),
    Case(
        "quantity_nan",
        422,
        "validation_error",
        lambda w: raw(
            f"/api/v1/carts/{w.open_cart}/lines", f'{{"barcode": "{MILK_CODE}", "quantity": NaN}}'
        ),
        field="quantity",
    ),
    Case(
        "merged_quantity_over_limit",
        422,
        "quantity_out_of_range",
        lambda w: add_line(w, {"barcode": MILK_CODE}, cart=w.big_cart),
        field="quantity",
    ),
    Case(
        "unknown_field",
        422,
        "validation_error",
        lambda w: add_line(w, {"barcode": MILK_CODE, "colour": "red"}),
        field="colour",
    ),
    Case(
        "missing_barcode",
        422,
        "validation_error",
        lambda w: add_line(w, {"quantity": 1}),
        field="barcode",
    ),
    Case(
        "barcode_number",
        422,
        "validation_error",
        lambda w: add_line(w, {"barcode": int(MILK_CODE)}),
        field="barcode",
    ),
    Case(
        "barcode_too_long",
        422,
        "validation_error",
        lambda w: add_line(w, {"barcode": "1" * 129}),
        field="barcode",
    ),
    Case(
        "channel_unknown",
        422,
        "validation_error",
        lambda w: post("/api/v1/carts", {"channel": "drive_thru"}),
        field="channel",
    ),
    Case(
        "channel_missing",
        422,
        "validation_error",
        lambda w: post("/api/v1/carts", {}),
        field="channel",
    ),
    Case(
        "patch_quantity_string",
        422,
        "validation_error",
        lambda w: patch_line(w, {"quantity": "2"}),
        field="quantity",
    ),
    Case(
        "patch_quantity_zero",
        422,
        "validation_error",
        lambda w: patch_line(w, {"quantity": 0}),
        field="quantity",
    ),
    Case(
        "patch_no_body",
        422,
        "validation_error",
        lambda w: Req("PATCH", f"/api/v1/carts/{w.open_cart}/lines/{w.open_line}"),
        field="quantity",
    ),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
