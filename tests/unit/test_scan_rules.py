"""What a scanned piece costs: the catalog decides, a label only where the product is sold so."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.catalog.barcodes import ScannedCode, VariableMeasureLayout, parse_barcode
from edge.catalog.scan_rules import ProductTerms, ScanRules, price_scan
from edge.errors import Unprocessable
from shared.money import MAX_AMOUNT

RULES = ScanRules(
    layout=VariableMeasureLayout(),
    minor_exponent=2,
    max_embedded_price=100_000,
    max_embedded_weight_g=50_000,
)
FIXED = ProductTerms("MILK", "Milk", "each", 1250, None)
BY_KG = ProductTerms("APPLE", "Apples", "kg", 1580, None)
DELI = ProductTerms("HAM", "Sliced ham", "variable", 3000, 8000)


def scanned(price: int | None = None, weight_g: int | None = None) -> ScannedCode:
    return ScannedCode("code", "gtin", "0" * 14, None, price, weight_g)


def refused(product: ProductTerms, code: ScannedCode, rules: ScanRules = RULES) -> str:
    with pytest.raises(Unprocessable) as err:
        price_scan(product, code, rules)
    assert err.value.status == 422
    assert err.value.details["sku"] == product.sku
    return err.value.code


def test_a_fixed_price_product_costs_its_catalog_price():
    piece = price_scan(FIXED, scanned(), RULES)
    assert (piece.price, piece.weight_g, piece.from_label) == (1250, None, False)


@pytest.mark.parametrize(
    "code",
    [scanned(price=1), scanned(weight_g=5), scanned(price=1, weight_g=5), scanned(price=999_999)],
)
def test_a_code_carrying_a_price_or_weight_never_prices_a_fixed_price_product(code):
    assert refused(FIXED, code) == "embedded_measure_not_allowed"


def test_the_attack_codes_from_the_field_are_refused_on_a_fixed_price_product():
    # 0.01 in AI 3922, a zero price and a zero weight: each once set the price of anything.
    for raw in (
        "01069012345678923922001",
        "(01)06901234567892(3922)000",
        "(01)06901234567892(3103)000000",
    ):
        assert refused(FIXED, parse_barcode(raw, RULES.layout)) == "embedded_measure_not_allowed"


def test_a_weighed_product_costs_its_price_per_kg_times_the_label_weight():
    piece = price_scan(BY_KG, scanned(weight_g=750), RULES)
    assert (piece.price, piece.weight_g, piece.from_label) == (1185, 750, True)


def test_a_weight_label_that_also_carries_a_price_is_charged_the_store_price():
    piece = price_scan(BY_KG, scanned(price=1, weight_g=750), RULES)
    assert piece.price == 1185


def test_a_price_label_on_a_weighed_product_is_charged_with_its_implied_weight():
    piece = price_scan(BY_KG, scanned(price=2370), RULES)
    assert (piece.price, piece.weight_g) == (2370, 1500)


@pytest.mark.parametrize(
    "code", [scanned(price=0), scanned(weight_g=0), scanned(weight_g=0, price=5)]
)
def test_zero_is_never_a_price_or_weight(code):
    assert refused(BY_KG, code) == "embedded_measure_zero"
    assert refused(DELI, code) == "embedded_measure_zero"


def test_a_weight_too_small_to_cost_anything_is_refused():
    cheap = ProductTerms("SALT", "Salt", "kg", 100, None)  # 1.00 per kg
    assert refused(cheap, scanned(weight_g=4)) == "embedded_measure_zero"  # 0.4 rounds to 0
    assert price_scan(cheap, scanned(weight_g=5), RULES).price == 1


def test_a_weighed_product_needs_a_label():
    assert refused(BY_KG, scanned()) == "weight_required"


def test_a_variable_price_product_needs_a_price_on_its_label():
    assert refused(DELI, scanned()) == "price_required"
    assert refused(DELI, scanned(weight_g=300)) == "price_required"
    piece = price_scan(DELI, scanned(price=2599), RULES)
    assert (piece.price, piece.from_label) == (2599, True)


def test_a_label_price_over_the_products_own_ceiling_is_refused():
    assert price_scan(DELI, scanned(price=8000), RULES).price == 8000
    assert refused(DELI, scanned(price=8001)) == "embedded_price_over_ceiling"


def test_without_a_product_ceiling_the_store_ceiling_applies():
    deli = ProductTerms("HAM", "Ham", "variable", 3000, None)
    assert price_scan(deli, scanned(price=100_000), RULES).price == 100_000
    assert refused(deli, scanned(price=100_001)) == "embedded_price_over_ceiling"


def test_weights_over_the_store_ceiling_are_refused_written_or_implied():
    assert refused(BY_KG, scanned(weight_g=50_001)) == "embedded_weight_over_ceiling"
    # 99,999.00 at 15.80 per kg is 6.3 tonnes of apples.
    big = ScanRules(RULES.layout, 2, MAX_AMOUNT, 50_000)
    assert refused(BY_KG, scanned(price=9_999_900), big) == "embedded_weight_over_ceiling"


@given(
    price=st.one_of(st.none(), st.integers(min_value=0, max_value=10**20)),
    weight=st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
    sold_by=st.sampled_from(["each", "kg", "variable"]),
    unit_price=st.integers(min_value=0, max_value=100_000_000),
    max_price=st.one_of(st.none(), st.integers(min_value=1, max_value=10**10)),
)
def test_whatever_a_code_says_the_price_is_payable_and_never_below_the_catalog_for_fixed_goods(
    price, weight, sold_by, unit_price, max_price
):
    product = ProductTerms("X", "X", sold_by, unit_price, max_price)
    try:
        piece = price_scan(product, scanned(price, weight), RULES)
    except Unprocessable:
        return
    assert 0 <= piece.price <= MAX_AMOUNT
    if sold_by == "each":
        assert piece.price == unit_price
    else:
        assert piece.price > 0
        assert piece.weight_g is None or 0 < piece.weight_g <= RULES.max_embedded_weight_g
        assert piece.price <= (max_price or RULES.max_embedded_price)


def test_rules_refuse_a_price_layout_finer_than_the_currency():
    with pytest.raises(ValueError, match="cannot be charged"):
        ScanRules(VariableMeasureLayout(decimals=2), 0, 100_000, 50_000)
