"""Looking up a scanned code: EAN-13, UPC-A, weighed labels; malformed and unknown codes."""

from __future__ import annotations

import pytest

from tests.builders import weighed_code
from tests.functional.conftest import Live
from tests.functional.device_api.error_shape import (
    BAD_CHECK_DIGIT,
    UNKNOWN_EAN13,
    Case,
    Req,
    World,
    add_line,
    assert_error_path,
    error_code,
)
from tests.functional.helpers import (
    APPLE_PLU,
    BAIJIU_CODE,
    MILK_CODE,
    SOAP_CODE,
    SOAP_UPC_A,
    half_up_div,
)


def test_scan_ean13_gives_product_and_price(live: Live) -> None:
    body = live.ok(live.get(f"/api/v1/products/by-barcode/{MILK_CODE}", "kiosk"))
    assert body == {
        "sku": "MILK1L",
        "name": "Fresh Milk 1L",
        "barcode": MILK_CODE,
        "unit_price": 1250,
        "price": 1250,
        "weight_g": None,
        "sold_by": "each",
        "tax_rate_bp": 900,
        "age_restricted": False,
        "category": "dairy",
    }
    baijiu = live.ok(live.get(f"/api/v1/products/by-barcode/{BAIJIU_CODE}", "handheld"))
    assert (baijiu["sku"], baijiu["age_restricted"], baijiu["price"]) == ("BAIJIU", True, 19900)


def test_scan_upc_a_and_its_ean13_form_find_the_same_product(live: Live) -> None:
    by_upc = live.ok(live.get(f"/api/v1/products/by-barcode/{SOAP_UPC_A}", "phone"))
    by_ean = live.ok(live.get(f"/api/v1/products/by-barcode/0{SOAP_UPC_A}", "phone"))
    by_other = live.ok(live.get(f"/api/v1/products/by-barcode/{SOAP_CODE}", "phone"))
    assert by_upc["sku"] == by_ean["sku"] == by_other["sku"] == "SOAP"
    assert by_upc["barcode"] == SOAP_UPC_A
    assert by_ean["barcode"] == "0" + SOAP_UPC_A
    assert by_upc["price"] == by_ean["price"] == 333
    assert by_upc["tax_rate_bp"] == 1300


def test_scan_weighed_label_prices_from_the_label(live: Live) -> None:
    code = weighed_code(APPLE_PLU, 1234)
    body = live.ok(live.get(f"/api/v1/products/by-barcode/{code}", "kiosk"))
    assert body["sku"] == "APPLE"
    assert body["barcode"] == code
    assert body["price"] == 1234
    assert body["unit_price"] == 1580
    assert body["sold_by"] == "kg"
    # weight = price / price-per-kg, in grams, rounded half up: 1234 * 1000 / 1580 = 781.01
    assert body["weight_g"] == half_up_div(1234 * 1000, 1580) == 781


def test_scan_bad_check_digit_is_422_and_unknown_code_is_404(live: Live) -> None:
    bad = MILK_CODE[:-1] + str((int(MILK_CODE[-1]) + 1) % 10)
    response = live.get(f"/api/v1/products/by-barcode/{bad}", "kiosk")
    body = live.ok(response, 422)
    assert body["error"]["code"] == "invalid_barcode"
    assert body["error"]["details"]["reason"] == "check_digit"
    assert body["error"]["details"]["expected_check_digit"] == int(MILK_CODE[-1])

    unknown = "4006381333931"  # a well-formed EAN-13 that is not in the catalog
    assert error_code(live, live.get(f"/api/v1/products/by-barcode/{unknown}", "kiosk"), 404) == (
        "unknown_product"
    )
    ean8 = "96385074"  # a well-formed EAN-8
    assert error_code(live, live.get(f"/api/v1/products/by-barcode/{ean8}", "kiosk"), 404) == (
        "unknown_product"
    )
    unknown_plu = weighed_code("999999", 100)
    body = live.ok(live.get(f"/api/v1/products/by-barcode/{unknown_plu}", "kiosk"), 404)
    assert body["error"]["code"] == "unknown_product"
    assert body["error"]["details"]["kind"] == "variable_measure"


ERRORS = [
    # --- 404: no such thing ---
    Case(
        "unknown_product",
        404,
        "unknown_product",
        lambda w: Req("GET", f"/api/v1/products/by-barcode/{UNKNOWN_EAN13}"),
    ),
    Case(
        "unknown_product_scan",
        404,
        "unknown_product",
        lambda w: add_line(w, {"barcode": UNKNOWN_EAN13}),
    ),
    Case(
        "unknown_plu_scan",
        404,
        "unknown_product",
        lambda w: add_line(w, {"barcode": weighed_code("999999", 100)}),
    ),
    # --- 422: well-formed JSON that does not make sense ---
    Case(
        "invalid_barcode_check_digit",
        422,
        "invalid_barcode",
        lambda w: add_line(w, {"barcode": BAD_CHECK_DIGIT}),
    ),
    Case(
        "invalid_barcode_lookup",
        422,
        "invalid_barcode",
        lambda w: Req("GET", f"/api/v1/products/by-barcode/{BAD_CHECK_DIGIT}", "phone"),
    ),
    Case(
        "invalid_barcode_letters",
        422,
        "invalid_barcode",
        lambda w: Req("GET", "/api/v1/products/by-barcode/abc", "handheld"),
    ),
    Case(
        "invalid_barcode_length",
        422,
        "invalid_barcode",
        lambda w: add_line(w, {"barcode": "12345"}),
    ),
    Case(
        "invalid_barcode_arabic_digits",
        422,
        "invalid_barcode",
        lambda w: add_line(w, {"barcode": "٦٩٠٠٠٠٠٠٠٠٠٠١٤"}),
    ),
    Case(
        "invalid_barcode_gs1",
        422,
        "invalid_barcode",
        lambda w: add_line(w, {"barcode": "(01)123"}),
    ),
    Case(
        "invalid_barcode_blank",
        422,
        "invalid_barcode",
        lambda w: add_line(w, {"barcode": "   "}),
    ),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
